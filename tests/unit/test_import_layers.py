"""The engine's import directions, from the layer diagram in docs/architecture.md.

Every module of ``medarena`` and of the web app (``medarena_leaderboard``) is parsed with ``ast``;
every import counts, also one inside a function or under ``TYPE_CHECKING`` (imports built from
strings, ``importlib.import_module``, are not seen). Each top-level package of ``medarena`` is
one component on a layer; lower layers never import higher ones, and components on one layer
import each other only where ``SIBLINGS`` says why. If a test here fails, either the import is
wrong or the design changed: then change docs/architecture.md and the tables below together.
"""

from __future__ import annotations

import ast
import collections
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = (REPO / "platform" / "medarena", REPO / "leaderboard" / "medarena_leaderboard")
WEB_APP = "medarena_leaderboard"

LAYERS: tuple[tuple[str, ...], ...] = (
    # Under every layer; these import each other freely (but never in a cycle). "medarena" is
    # the package's own __init__.
    ("medarena", "exceptions", "settings", "yamlfile", "schema_lock", "numbers"),
    ("metrics", "sandbox", "tasks"),
    ("submissions", "store", "tracking", "execution"),
    ("tuning", "scoring", "testing"),
    ("arena",),
    ("cli", "__main__", WEB_APP),
)
LAYER_OF = {component: n for n, layer in enumerate(LAYERS) for component in layer}

SIBLINGS: dict[tuple[str, str], str] = {
    ("tasks", "metrics"): "tasks' kinds use metrics to score",
    ("tasks", "sandbox"): "a task's budget holds its sandbox limits",
    ("cli", WEB_APP): "`medarena serve` runs the web app",
    ("__main__", "cli"): "`python -m medarena` runs the command line",
}
"""The imports allowed between components of one layer (above the bottom one), and why."""

ONLY_IMPORTERS = {"ray": {"execution"}, "mlflow": {"tracking"}}
"""Third-party packages that one component alone imports."""
NO_RAY = (
    "medarena.execution.supervisor",
    "medarena.execution.outputs",
    "medarena.execution.trials",
)
"""The trusted side of every job: it runs inside a Ray actor but never imports ray itself."""
WEB_APP_NEVER = ("ray", "medarena.execution", "medarena.tuning")
"""What the web app never imports, directly or through the modules it imports."""


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module."""
    target: str
    """The imported module: a module of the engine when it is one, else the name as written."""
    path: Path
    line: int

    def where(self) -> str:
        try:
            path = self.path.relative_to(REPO)
        except ValueError:
            path = self.path
        return f"{path}:{self.line}: {self.module} imports {self.target}"


def find_modules(roots: Iterable[Path]) -> dict[str, Path]:
    """Every module under the package folders ``roots``, by dotted name."""
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            parts = [root.name, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def known(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ``modules`` that ``name`` lies in (its longest prefix), if any."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def parse_imports(modules: dict[str, Path]) -> list[Import]:
    found = []
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, up level - 1 packages
                    parts = package.split(".")
                    up = ".".join(parts[: len(parts) - node.level + 1])
                    base = f"{up}.{base}" if base else up
                for alias in node.names:  # `from package import submodule` imports the latter
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
            for target in targets:
                found.append(Import(module, known(target, modules) or target, path, node.lineno))
    return found


def component(name: str) -> str | None:
    """The layer component of a module name, or ``None`` for a third-party module."""
    parts = name.split(".")
    if parts[0] == "medarena":
        return parts[1] if len(parts) > 1 else "medarena"
    if parts[0] == WEB_APP:
        return WEB_APP
    return None


def layer_violations(imports: Iterable[Import]) -> list[str]:
    problems = []
    for imp in imports:
        source, target = component(imp.module), component(imp.target)
        if source is None or target is None or source == target:
            continue
        missing = [c for c in (source, target) if c not in LAYER_OF]
        if missing:
            problems.append(f"{imp.where()}: {', '.join(missing)} is on no layer of LAYERS")
            continue
        low, high = LAYER_OF[source], LAYER_OF[target]
        if high > low:
            problems.append(
                f"{imp.where()}: {source} (layer {low}) imports {target} (layer {high}), "
                "but lower layers never import higher ones"
            )
        elif high == low and low > 0 and (source, target) not in SIBLINGS:
            problems.append(
                f"{imp.where()}: {source} and {target} share layer {low} and do not import "
                "each other (or add the pair to SIBLINGS, with its reason)"
            )
    return problems


def third_party_violations(imports: Iterable[Import]) -> list[str]:
    problems = []
    for imp in imports:
        top = imp.target.split(".")[0]
        owners = ONLY_IMPORTERS.get(top)
        if owners is not None and component(imp.module) not in owners:
            problems.append(f"{imp.where()}: only {', '.join(sorted(owners))} imports {top}")
        if top == "ray" and imp.module in NO_RAY:
            problems.append(f"{imp.where()}: {imp.module} never imports ray")
    return problems


def _forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(f"{bad}.") for bad in WEB_APP_NEVER)


def web_app_violations(imports: list[Import], modules: dict[str, Path]) -> list[str]:
    """Imports of what the web app never imports: its own, and those of every engine module it
    reaches (a module also runs its parent packages), each with the chain that reaches it."""
    graph: dict[str, list[Import]] = collections.defaultdict(list)
    for imp in imports:
        graph[imp.module].append(imp)
    start = sorted(m for m in modules if component(m) == WEB_APP)
    via: dict[str, Import | None] = dict.fromkeys(start)
    queue = collections.deque(start)
    problems = []
    while queue:
        module = queue.popleft()
        parent = module.rpartition(".")[0]
        runs_parent = [Import(module, parent, modules[module], 0)] if parent else []  # line 0
        reached = [*graph[module], *runs_parent]
        for imp in reached:
            if _forbidden(imp.target):
                chain, step = [imp.where()], via[imp.module]
                while step is not None:
                    chain.append(step.where())
                    step = via[step.module]
                problems.append("\n    reached by ".join(chain))
            elif imp.target in modules and imp.target not in via:
                via[imp.target] = imp
                queue.append(imp.target)
    return problems


def cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iteratively)."""
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for a, b in edges:
        if a != b:
            graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(root: str) -> None:
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    members = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        members.append(member)
                        if member == node:
                            break
                    if len(members) > 1:
                        found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycle_report(imports: list[Import], key: dict[str, str | None]) -> list[str]:
    """Each import cycle among the nodes ``key`` maps the modules to, with the imports in it."""
    edges = []
    for imp in imports:
        a, b = key.get(imp.module), key.get(imp.target)
        if a is not None and b is not None:
            edges.append((a, b))
    problems = []
    for members in cycles(edges):
        inside = set(members)
        lines = [
            imp.where()
            for imp in imports
            if key.get(imp.module) in inside
            and key.get(imp.target) in inside
            and key.get(imp.module) != key.get(imp.target)
        ]
        problems.append(f"{' <-> '.join(members)}:\n    " + "\n    ".join(lines))
    return problems


def check(roots: Iterable[Path]) -> dict[str, list[str]]:
    """Every kind of violation under ``roots``, by kind."""
    modules = find_modules(roots)
    imports = parse_imports(modules)
    engine = [i for i in imports if i.target in modules]
    return {
        "layers": layer_violations(imports),
        "third-party": third_party_violations(imports),
        "web app": web_app_violations(imports, modules),
        "package cycles": cycle_report(engine, {m: component(m) for m in modules}),
        "module cycles": cycle_report(engine, {m: m for m in modules}),
    }


def _report(problems: list[str]) -> str:
    return f"{len(problems)} violation(s):\n" + "\n".join(problems)


def test_every_package_is_on_a_layer() -> None:
    components = {component(m) for m in find_modules(ROOTS)}
    assert components <= set(LAYER_OF), components - set(LAYER_OF)
    assert len(find_modules(ROOTS)) > 50  # the roots are right


def test_lower_layers_never_import_higher_ones() -> None:
    problems = check(ROOTS)["layers"]
    assert not problems, _report(problems)


def test_ray_and_mlflow_each_have_one_importer() -> None:
    problems = check(ROOTS)["third-party"]
    assert not problems, _report(problems)


def test_the_web_app_never_imports_ray_execution_or_tuning() -> None:
    problems = check(ROOTS)["web app"]
    assert not problems, _report(problems)


def test_no_import_cycle_between_packages() -> None:
    problems = check(ROOTS)["package cycles"]
    assert not problems, _report(problems)


def test_no_import_cycle_between_modules() -> None:
    problems = check(ROOTS)["module cycles"]
    assert not problems, _report(problems)


def test_the_checks_see_every_kind_of_import(tmp_path: Path) -> None:
    """The checker on a made-up tree: each planted violation is reported."""
    files = {
        "medarena/__init__.py": "",
        "medarena/metrics/__init__.py": "from medarena.arena import run\n",
        "medarena/store/__init__.py": "def f():\n    from medarena.tracking import log\n",
        "medarena/tracking/__init__.py": "import mlflow\n",
        "medarena/execution/__init__.py": "",
        "medarena/execution/pool.py": "from ..tuning import b\n",
        "medarena/tuning/__init__.py": "",
        "medarena/tuning/a.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from medarena.tuning.b import B\n"
        ),
        "medarena/tuning/b.py": "from medarena.tuning import a\n",
        "medarena/scoring/__init__.py": "def g():\n    import ray.util\n",
        "medarena/arena/__init__.py": "from medarena import novel\n",
        "medarena/novel/__init__.py": "",
        "medarena_leaderboard/__init__.py": "",
        "medarena_leaderboard/app.py": "from medarena.scoring import score\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = check([tmp_path / "medarena", tmp_path / "medarena_leaderboard"])
    layers = "\n".join(found["layers"])
    assert "metrics/__init__.py:1: medarena.metrics imports medarena.arena: metrics" in layers
    assert "medarena.store imports medarena.tracking: store and tracking share" in layers
    assert "medarena.execution.pool imports medarena.tuning.b: execution (layer 2)" in layers
    assert "novel is on no layer" in layers
    assert len(found["layers"]) == 4, layers
    assert found["third-party"] == [
        f"{tmp_path}/medarena/scoring/__init__.py:2: medarena.scoring imports ray.util: "
        "only execution imports ray"
    ]
    (web,) = found["web app"]
    assert web.startswith(f"{tmp_path}/medarena/scoring/__init__.py:2: medarena.scoring imports")
    assert "reached by" in web and "medarena_leaderboard.app imports medarena.scoring" in web
    assert found["package cycles"] == []
    (cycle,) = found["module cycles"]
    assert cycle.startswith("medarena.tuning.a <-> medarena.tuning.b:")
    assert "a.py:3: medarena.tuning.a imports medarena.tuning.b" in cycle

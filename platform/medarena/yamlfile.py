"""Reading the platform's YAML files with errors that name the file, line and field.

The files may come from untrusted submitters, so reading is bounded: a size cap, strict UTF-8,
a nesting cap, a cap on the values a document expands to through aliases ("billion laughs"),
and plain data only (a :class:`yaml.SafeLoader` that refuses every tag it does not know).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

from medarena.exceptions import UserError

MAX_YAML_BYTES = 64 * 1024
"""Largest YAML file read; platform YAML files are a few KiB."""
MAX_YAML_VALUES = 100_000
"""Most values a document may expand to, counting every alias as a full copy of its target.

A 64 KiB file without aliases cannot reach it; an alias bomb does within a few lines."""
MAX_YAML_DEPTH = 64
"""Deepest nesting of mappings and lists."""


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that counts the expanded size and depth of the document as it composes it."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values it expands to, once composed

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()
        if self.check_event(AliasEvent):
            node = super().compose_node(parent, index)
            if node is not None and id(node) not in self._sizes:
                raise ComposerError(
                    None, None, f"alias *{event.anchor} refers to a value that contains it",
                    event.start_mark,
                )  # fmt: skip
            return node
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise ComposerError(
                None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", event.start_mark
            )
        node = super().compose_node(parent, index)
        self._depth -= 1
        if node is None:
            return None
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [child for pair in node.value for child in pair]
        size = 1 + sum(self._sizes[id(child)] for child in children)
        if size > MAX_YAML_VALUES:
            raise ComposerError(
                None, None,
                f"the document expands to more than {MAX_YAML_VALUES} values through its "
                "anchors and aliases; write the values out instead of repeating aliases",
                node.start_mark,
            )  # fmt: skip
        self._sizes[id(node)] = size
        return node


def _refuse_tag(loader: yaml.SafeLoader, node: Node) -> Any:
    raise ConstructorError(
        None, None,
        f"tag {node.tag!r} is not allowed; use plain mappings, lists, strings, numbers and "
        "booleans",
        node.start_mark,
    )  # fmt: skip


_BoundedLoader.add_constructor(None, _refuse_tag)


def _load(text: str) -> Any:
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml_mapping(
    path: Path,
    *,
    error: type[UserError],
    shown_as: Path | None = None,
    max_bytes: int = MAX_YAML_BYTES,
) -> dict[str, Any]:
    """Parse ``path`` as a YAML mapping or raise ``error`` saying what is wrong and where.

    ``shown_as`` is the path named in messages (default ``path``), for a file unpacked from an
    upload into a temporary folder.
    """
    shown = shown_as or path
    if not path.is_file():
        raise error(f"{shown}: file not found")
    with path.open("rb") as stream:
        raw = stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise error(f"{shown}: larger than {max_bytes // 1024} KiB; this file holds settings only")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{shown}:{line}: not UTF-8 text: byte 0x{raw[exc.start]:02x} at byte offset "
            f"{exc.start}; save the file as UTF-8"
        ) from exc
    try:
        data = _load(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise error(
            f"{shown}:{line}:{column}: invalid YAML: control character #x{exc.character:04x} "
            "is not allowed; remove it"
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(shown)
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{where}: invalid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise error(f"{shown}: expected a mapping of fields at the top level")
    return data


def format_validation_error(path: Path, exc: ValidationError) -> str:
    """One line per problem: ``file: field.sub: message``."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: field '{field}': {message}")
    return "\n".join(lines)

"""Submission folders are validated without running their code; errors name file and field."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from medarena.exceptions import SubmissionError
from medarena.submissions import FloatParam, IntParam, load_submission
from medarena.submissions.bundle import MAX_BUNDLE_FILES

GOOD_YAML = """\
name: ok
entry_point: model.py:Net
search_space:
  lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
  width: {type: int, low: 4, high: 16, step: 4}
  act: {type: categorical, choices: [relu, gelu]}
"""
MODEL = "class Net:\n    pass\n"


def test_a_good_submission_loads_and_hashes(make_submission) -> None:  # type: ignore[no-untyped-def]
    folder = make_submission("ok", GOOD_YAML, MODEL)
    bundle = load_submission(folder)
    assert bundle.spec.entry_point.cls == "Net"
    assert isinstance(bundle.spec.search_space["lr"], FloatParam)
    assert isinstance(bundle.spec.search_space["width"], IntParam)
    assert set(bundle.files) == {"submission.yaml", "model.py"}
    (folder / "model.py").write_text(MODEL + "# changed\n")
    assert load_submission(folder).sha256 != bundle.sha256


def test_missing_submission_yaml(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match=r"submission\.yaml: file not found"):
        load_submission(tmp_path)


def test_invalid_yaml_names_the_line(make_submission) -> None:  # type: ignore[no-untyped-def]
    folder = make_submission("bad", "name: x\nentry_point: [model.py:Net\n", MODEL)
    with pytest.raises(SubmissionError, match=r"submission\.yaml:\d+:\d+: invalid YAML"):
        load_submission(folder)


SPACE = "name: x\nentry_point: model.py:Net\nsearch_space:\n  "


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("name: x\nentry_point: model.py\n", "field 'entry_point'.*expected 'file.py:ClassName'"),
        ("name: x\nentry_point: ../x.py:Net\n", "must be inside the submission folder"),
        ("name: x\nentry_point: other.py:Net\n", "field 'entry_point': file 'other.py' not found"),
        (
            "name: x\nentry_point: model.py:Missing\n",
            "class 'Missing' is not defined.*classes found: Net",
        ),
        (
            "name: x\nentry_point: model.py:Net\n"
            "search_space:\n  lr: {type: float, low: 1, high: 0}\n",
            r"field 'search_space\.lr\.float': .*low \(1\.0\) must be below high",
        ),
        (
            "name: x\nentry_point: model.py:Net\nsearch_space:\n  lr: {type: normal}\n",
            r"field 'search_space\.lr'",
        ),
        ("name: x\nentry_point: model.py:Net\nextra: 1\n", "field 'extra': Extra inputs"),
        # Search spaces the driver's sampler could not draw from, or store exactly.
        (
            SPACE + "lr: {type: float, low: -.inf, high: 1}\n",
            r"search_space\.lr\.float\.low.*finite",
        ),
        (SPACE + "lr: {type: float, low: -1e308, high: 1e308}\n", "wider than a float holds"),
        (SPACE + "w: {type: int, low: 0, high: 1e30}\n", r"search_space\.w\.int\.high"),
        (SPACE + "w: {type: int, low: 0, high: 100000000000000000000}\n", "less than or equal"),
        (SPACE + "a: {type: categorical, choices: [.nan, 1]}\n", "choice 1 is nan"),
        (SPACE + "a: {type: categorical, choices: [x, 1, true]}\n", r"choice 3 \(True\) equals"),
        (SPACE + "a: {type: categorical, choices: [" + "y" * 300 + "]}\n", "longer than 256"),
        ("name: " + "n" * 101 + "\nentry_point: model.py:Net\n", "field 'name'.*at most 100"),
    ],
)
def test_invalid_fields(make_submission, yaml_text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    folder = make_submission("bad", yaml_text, MODEL)
    with pytest.raises(SubmissionError, match=message):
        load_submission(folder)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (b"\xff\xfe.py", r"'.*\\udcff\\udcfe\.py': the name holds .* not UTF-8 \('\\udcff'\)"),
        (b"a\nb.py", r"'.*a\\nb\.py': the name holds a control character"),
    ],
)
def test_file_names_must_be_printable_utf8(make_submission, name: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    folder = make_submission("bad", GOOD_YAML, MODEL)
    Path(os.fsdecode(bytes(folder) + b"/" + name)).write_text("x = 1\n")
    with pytest.raises(SubmissionError, match=message):
        load_submission(folder)


def test_too_many_files_are_refused(make_submission) -> None:  # type: ignore[no-untyped-def]
    folder = make_submission("many", GOOD_YAML, MODEL)
    (folder / "pkg").mkdir()
    for i in range(MAX_BUNDLE_FILES):
        (folder / "pkg" / f"m{i}.py").touch()
    with pytest.raises(SubmissionError, match=f"more than {MAX_BUNDLE_FILES} files"):
        load_submission(folder)


def test_choices_keep_their_types(make_submission) -> None:  # type: ignore[no-untyped-def]
    text = SPACE + "a: {type: categorical, choices: [x, 2, 0.5, false, '1']}\n"
    bundle = load_submission(make_submission("ok", text, MODEL))
    choices = bundle.spec.search_space["a"].choices  # type: ignore[union-attr]
    assert [(type(c), c) for c in choices] == [
        (str, "x"),
        (int, 2),
        (float, 0.5),
        (bool, False),
        (str, "1"),
    ]


def test_syntax_error_names_file_and_line(make_submission) -> None:  # type: ignore[no-untyped-def]
    folder = make_submission("bad", GOOD_YAML, "class Net:\n    def f(:\n")
    with pytest.raises(SubmissionError, match=r"model\.py:2: syntax error"):
        load_submission(folder)


def test_symlinks_are_refused(make_submission, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = make_submission("bad", GOOD_YAML, MODEL)
    (folder / "link").symlink_to(tmp_path)
    with pytest.raises(SubmissionError, match="symbolic links"):
        load_submission(folder)


def test_baselines_validate() -> None:
    root = Path(__file__).resolve().parents[2] / "submissions"
    for name in ("small-cnn", "logistic-regression", "template"):
        assert load_submission(root / name).spec.entry_point.file == "model.py"


def _alias_bomb(levels: int = 9) -> str:
    """A "billion laughs": each level is a list of nine aliases to the level below."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_quickly(make_submission) -> None:  # type: ignore[no-untyped-def]
    folder = make_submission("bomb", GOOD_YAML + _alias_bomb(), MODEL)
    start = time.perf_counter()
    with pytest.raises(
        SubmissionError,
        match=r"submission\.yaml:\d+:\d+: invalid YAML: the document expands to more than 100000",
    ):
        load_submission(folder)
    assert time.perf_counter() - start < 0.5


def test_a_few_aliases_still_load(make_submission) -> None:  # type: ignore[no-untyped-def]
    text = GOOD_YAML.replace("act: {", "act: &act {") + "  act2: *act\n"
    bundle = load_submission(make_submission("aliases", text, MODEL))
    assert bundle.spec.search_space["act2"] == bundle.spec.search_space["act"]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("name: &a [x, *a]\n", r"submission\.yaml:1:14: invalid YAML: alias \*a refers to a value"),
        ("name: " + "[" * 100 + "]" * 100 + "\n", r"invalid YAML: nested more than 64 levels"),
        ("name: x\x01y\n", r"submission\.yaml:1:8: invalid YAML: control character #x0001"),
        ("name: !custom x\n", r"submission\.yaml:1:7: invalid YAML: tag '!custom' is not allowed"),
        ("description: " + "x" * 70_000 + "\n", r"submission\.yaml: larger than 64 KiB"),
    ],
)
def test_hostile_yaml_is_refused(make_submission, yaml_text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SubmissionError, match=message):
        load_submission(make_submission("bad", yaml_text, MODEL))


def test_python_tags_are_refused_not_run(make_submission, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    planted = tmp_path / "planted"
    text = f"name: !!python/object/apply:os.system ['touch {planted}']\nentry_point: model.py:Net\n"
    with pytest.raises(
        SubmissionError,
        match=r"submission\.yaml:1:7: invalid YAML: tag 'tag:yaml\.org,2002:python/object/apply:"
        r"os\.system' is not allowed",
    ):
        load_submission(make_submission("bad", text, MODEL))
    assert not planted.exists()


def test_non_utf8_yaml_names_the_byte(make_submission) -> None:  # type: ignore[no-untyped-def]
    folder = make_submission("bad", GOOD_YAML, MODEL)
    (folder / "submission.yaml").write_bytes(b"name: ok\ndescription: caf\xe9\n")
    with pytest.raises(
        SubmissionError,
        match=r"submission\.yaml:2: not UTF-8 text: byte 0xe9 at byte offset 25; save the file",
    ):
        load_submission(folder)

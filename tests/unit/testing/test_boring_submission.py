"""The boring submission of medarena.testing: written, it is a valid submission; variants build
on it. (It trains in the sandbox in tests/integration, e.g. test_pool_conformance.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from medarena.exceptions import SubmissionError
from medarena.submissions import load_submission
from medarena.testing import BORING_MODEL, BORING_SEARCH_SPACE, write_boring_submission


def test_the_boring_submission_is_a_valid_submission(tmp_path: Path) -> None:
    folder = write_boring_submission(tmp_path / "boring")
    bundle = load_submission(folder)
    assert bundle.spec.name == "boring"
    assert str(bundle.spec.entry_point) == "boring.py:Boring"
    assert set(bundle.spec.search_space) == set(BORING_SEARCH_SPACE) == {"lr"}
    assert sorted(bundle.files) == ["boring.py", "submission.yaml"]
    assert bundle.files["boring.py"].decode("utf-8") == BORING_MODEL
    # One linear layer, built from what the platform passes; no torch import needed to check.
    tree = ast.parse(BORING_MODEL)
    (cls,) = (node for node in tree.body if isinstance(node, ast.ClassDef))
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    assert [a.arg for a in init.args.args] == ["self", "num_classes", "input_shape", "lr"]
    assert BORING_MODEL.count("nn.Linear(") == 1


def test_a_variant_builds_on_the_boring_model(tmp_path: Path) -> None:
    folder = write_boring_submission(
        tmp_path / "slow",
        name="slow",
        variant="""
            import time
            from boring import Boring

            class Slow(Boring):
                def training_step(self, batch, batch_idx):
                    time.sleep(0.05)
                    return super().training_step(batch, batch_idx)
        """,
        entry_class="Slow",
        search_space={},
    )
    bundle = load_submission(folder)
    assert str(bundle.spec.entry_point) == "model.py:Slow" and bundle.spec.search_space == {}
    assert bundle.files["model.py"].startswith(b"import time\nfrom boring import Boring\n")


def test_a_variant_whose_class_is_missing_is_refused_as_any_submission(tmp_path: Path) -> None:
    folder = write_boring_submission(tmp_path / "x", variant="X = 1\n", entry_class="Missing")
    with pytest.raises(SubmissionError, match="class 'Missing' is not defined"):
        load_submission(folder)


def test_it_never_overwrites_a_submission(tmp_path: Path) -> None:
    write_boring_submission(tmp_path / "boring")
    with pytest.raises(FileExistsError):
        write_boring_submission(tmp_path / "boring")

"""``medarena evaluate``: file formats, JSON output and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from medarena.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["evaluate", *args, "--bootstrap", "50"])


def _classification(tmp_path: Path, n: int = 40):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    p = rng.dirichlet(np.ones(3), n)
    ref = tmp_path / "ref.csv"
    ref.write_text("case_id,label\n" + "".join(f"c{i},{v}\n" for i, v in enumerate(y)))
    pred = tmp_path / "pred.csv"
    rows = "".join(f"c{i},{a:.17g},{b:.17g},{c:.17g}\n" for i, (a, b, c) in enumerate(p))
    pred.write_text("case_id,0,1,2\n" + rows)
    return ref, pred, y, p


def test_classification_json(tmp_path: Path) -> None:
    ref, pred, y, p = _classification(tmp_path)
    result = _run("--kind", "classification", "--reference", str(ref), "--predictions",
                  str(pred), "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["metrics"]["auc"]["value"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))
    assert len(out["metrics"]["auc"]["ci"]) == 2
    assert out["conventions"]["multi_class"] == "ovr"
    assert len(out["per_case"]) == 40 and out["missing_cases"] == []


def test_classification_missing_case_worst_case(tmp_path: Path) -> None:
    ref, pred, _y, _ = _classification(tmp_path)
    lines = pred.read_text().splitlines()
    pred.write_text("\n".join(lines[:-1]) + "\n")  # drop case c39
    result = _run("--kind", "classification", "--reference", str(ref), "--predictions",
                  str(pred), "--format", "json")  # fmt: skip
    out = json.loads(result.output)
    assert out["missing_cases"] == ["c39"]
    assert out["per_case"][-1]["correct"] is False


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("case,0,1,2\nc0,0.2,0.3,0.5\n", "missing column"),
        ("case_id,0,1,2\nc0,0.2,nan,0.5\n", "not a finite number"),
        ("case_id,0,1,2\nc0,1.5,-0.5,0\n", "outside [0, 1]"),
        ("case_id,0,1,2\nc0,0.2,0.2,0.2\n", "sum to"),
        ("case_id,0,1,2\nc0,0.2,0.3,0.5\nc0,0.2,0.3,0.5\n", "more than once"),
        ("case_id,0,1,2\nzz,0.2,0.3,0.5\n", "'zz' is not in the reference"),
    ],
)
def test_classification_bad_predictions(tmp_path: Path, content: str, message: str) -> None:
    ref, pred, *_ = _classification(tmp_path)
    pred.write_text(content)
    result = _run("--kind", "classification", "--reference", str(ref), "--predictions", str(pred))
    assert result.exit_code == 2
    assert message in result.output and str(pred) in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def _save_nifti(path: Path, data: np.ndarray, spacing) -> None:
    nib.save(nib.Nifti1Image(data.astype(np.int16), np.diag([*spacing, 1.0])), path)


def test_segmentation_folders(tmp_path: Path) -> None:
    ref_dir, pred_dir = tmp_path / "ref", tmp_path / "pred"
    ref_dir.mkdir()
    pred_dir.mkdir()
    a = np.zeros((16, 16, 12), np.int16)
    a[4:10, 4:10, 3:8] = 1
    b = np.zeros_like(a)
    b[5:11, 4:10, 3:8] = 1
    _save_nifti(ref_dir / "x.nii.gz", a, (1.0, 1.0, 2.5))
    _save_nifti(pred_dir / "x.nii.gz", b, (1.0, 1.0, 2.5))
    np.save(ref_dir / "y.npy", a)
    result = _run("--kind", "segmentation", "--reference", str(ref_dir), "--predictions",
                  str(pred_dir), "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["missing_cases"] == ["y"]
    dice_x = 2 * 5 * 6 * 5 / (2 * 6 * 6 * 5)
    assert out["per_case"][0]["dice"] == pytest.approx(dice_x)
    assert out["metrics"]["dice"]["value"] == pytest.approx(dice_x / 2)
    assert out["conventions"]["empty_both"] == "best"
    _save_nifti(pred_dir / "x.nii.gz", b, (1.0, 1.0, 3.0))
    result = _run("--kind", "segmentation", "--reference", str(ref_dir), "--predictions",
                  str(pred_dir))  # fmt: skip
    assert result.exit_code == 2 and "spacing" in result.output


def test_detection_luna16(tmp_path: Path) -> None:
    ref = tmp_path / "annotations.csv"
    ref.write_text("seriesuid,coordX,coordY,coordZ,diameter_mm\ns1,0,0,0,10\ns2,50,50,50,8\n")
    pred = tmp_path / "candidates.csv"
    pred.write_text(
        "seriesuid,coordX,coordY,coordZ,probability\ns1,1,0,0,0.9\ns1,30,0,0,0.2\ns3,0,0,0,0.5\n"
    )
    cases = tmp_path / "scans.txt"
    cases.write_text("s1\ns2\ns3\ns4\n")
    result = _run("--kind", "detection", "--reference", str(ref), "--predictions", str(pred),
                  "--cases", str(cases), "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["metrics"]["fps_per_scan"]["value"] == pytest.approx(2 / 4)
    assert out["metrics"]["sensitivity"]["value"] == pytest.approx(0.5)
    assert "cpm" in out["metrics"] and out["conventions"]["operating_points"] == "luna16"
    assert set(out["missing_cases"]) == {"s2", "s4"}
    result = _run("--kind", "detection", "--reference", str(ref), "--predictions", str(pred))
    assert result.exit_code == 2 and "'s3'" in result.output

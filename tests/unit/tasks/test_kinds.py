"""Task kinds: each owns its output contract (shape, dtype, messages, decoding) and its scoring."""

from __future__ import annotations

import io

import numpy as np
import pytest

from medarena.exceptions import DatasetError
from medarena.metrics import ClassificationConventions, SegmentationConventions
from medarena.scoring.score import score_predictions
from medarena.tasks.kinds import (
    CLASSIFICATION,
    DECODE_BATCH,
    DETECTION,
    KINDS,
    SEGMENTATION,
    Candidates,
    OutputContract,
    OutputContractError,
    Reference,
    get_kind,
)
from medarena.tasks.readers import Lesions


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("classification", (5, 3)),
        ("segmentation", (5, 3, 8, 6)),
        ("detection", (5, 1, 8, 6)),
    ],
)
def test_each_kind_states_its_contract(name: str, shape: tuple[int, ...]) -> None:
    contract = get_kind(name).output_contract(5, num_classes=3, input_shape=(1, 8, 6))
    assert contract == OutputContract(KINDS[name].contract, shape)


CONTRACT = CLASSIFICATION.output_contract(2, num_classes=4, input_shape=(1, 16, 16))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_npy(np.zeros((2, 4), np.int64)), "forward() must return floats, got int64"),
        (
            _npy(np.zeros((2, 2), np.float32)),
            "forward() must return logits of shape (batch, num_classes) = (2, 4), got (2, 2)",
        ),
        (
            _npy(np.full((2, 4), np.inf, np.float32)),
            "forward() returned non-finite values (NaN or inf)",
        ),
        (
            _npy(np.array([{"a": 1}, 2], dtype=object)),
            "forward()'s output is not a plain .npy array: Object arrays cannot be loaded when "
            "allow_pickle=False",
        ),
        (b"PK\x03\x04", "forward()'s output is not a plain .npy array"),
    ],
)
def test_contract_violations_say_what_forward_must_return(raw: bytes, message: str) -> None:
    with pytest.raises(OutputContractError) as caught:
        CONTRACT.parse(raw)
    assert str(caught.value).startswith(message)


def test_an_npz_archive_is_not_an_output() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, a=np.zeros((2, 4), np.float32))
    with pytest.raises(OutputContractError, match=r"it is an \.npz archive$"):
        CONTRACT.parse(buffer.getvalue())


def test_outputs_that_keep_the_contract_come_back_as_float32() -> None:
    out = CONTRACT.parse(_npy(np.ones((2, 4), np.float64)))
    assert out.dtype == np.float32 and out.shape == (2, 4)
    assert CONTRACT.never_scored("auc") == (
        "the validation metric 'auc' was NaN in every epoch; check that forward() returns "
        "finite logits of shape (batch, num_classes)"
    )


def test_decoding_in_batches_is_decoding_at_once() -> None:
    rng = np.random.default_rng(0)
    n = DECODE_BATCH + 7
    spacing, origin = np.ones((n, 3)), np.zeros((n, 3))
    logits = rng.normal(size=(n, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        CLASSIFICATION.decode_all(logits, spacing=spacing, origin=origin),
        CLASSIFICATION.decode(logits, spacing=spacing, origin=origin),
    )
    heat = np.full((n, 1, 4, 6, 6), -9.0, np.float32)
    heat[[0, DECODE_BATCH + 3], 0, 1, 2, 3] = 4.0
    found = DETECTION.decode_all(heat, spacing=spacing, origin=origin)
    assert found.case_index.tolist() == [0, DECODE_BATCH + 3]  # batch offsets applied
    np.testing.assert_allclose(found.center_xyz, [[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])


def test_classification_scores_and_worst_case() -> None:
    y = np.array([0, 1, 2, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    ref = Reference(y, np.ones((4, 2)), np.zeros((4, 2)))
    scores = score_predictions("classification", p, ref, n_bootstrap=20)
    assert scores.metrics["accuracy"].value == 0.5
    assert scores.per_case["correct"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert scores.per_case["probability_of_label"].tolist() == [0.7, 0.8, 0.2, 0.3]
    assert CLASSIFICATION.worst_case(1, 3).tolist() == [0.5, 0.0, 0.5]
    assert CLASSIFICATION.per_class(y, p)["1"]["sensitivity"] == 0.5
    with pytest.raises(TypeError, match="not SegmentationConventions"):
        CLASSIFICATION.score(p, ref, conventions=SegmentationConventions())  # type: ignore[arg-type]
    assert CLASSIFICATION.resolve(None) == ClassificationConventions()


def test_segmentation_per_case_is_the_mean_over_labels() -> None:
    ref_maps = np.zeros((2, 8, 8), np.uint8)
    ref_maps[:, 1:4, 1:4] = 1
    ref_maps[0, 5:7, 5:7] = 2
    pred = ref_maps.copy()
    pred[1] = 0  # case 1 misses its only label (label 2 is absent from both: NaN-free "best")
    ref = Reference(ref_maps, np.ones((2, 2)), np.zeros((2, 2)))
    scores = SEGMENTATION.score(pred, ref, n_bootstrap=20)
    assert SEGMENTATION.labels(ref_maps) == [1, 2]
    assert scores.per_case["dice"].tolist() == [1.0, 0.5]
    assert scores.metrics["dice"].value == 0.75
    worst = SEGMENTATION.worst_values((3, 4), (1.0, 1.0))
    assert worst["dice"] == 0.0 and worst["hd"] == 5.0


def test_detection_scores_count_per_scan() -> None:
    lesions = Lesions(
        case_index=np.array([0, 1, 1]),
        center_xyz=np.array([[0.0, 0, 0], [50, 50, 50], [80, 80, 80]]),
        diameter_mm=np.array([10.0, 8.0, 6.0]),
        excluded=np.array([False, False, True]),
    )
    candidates = Candidates(
        case_index=np.array([0, 0, 1, 2]),
        center_xyz=np.array([[1.0, 0, 0], [30, 0, 0], [80, 80, 80], [5, 5, 5]]),
        probability=np.array([0.9, 0.2, 0.6, 0.5]),
    )
    ref = Reference(np.array([1, 1, 0]), np.ones((3, 3)), np.zeros((3, 3)), lesions)
    scores = DETECTION.score(candidates, ref, n_bootstrap=20)
    assert scores.per_case["lesions"].tolist() == [1.0, 1.0, 0.0]  # the excluded one not
    assert scores.per_case["detected"].tolist() == [1.0, 0.0, 0.0]
    assert scores.per_case["false_positives"].tolist() == [1.0, 0.0, 1.0]  # a hit on excluded
    assert scores.metrics["sensitivity"].value == 0.5
    assert scores.metrics["fps_per_scan"].value == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("kind", "labels", "message"),
    [
        (CLASSIFICATION, np.array([0, 3]), r"case 'b': class index 3 is not one of the task's 3"),
        (CLASSIFICATION, np.array([0, 0]), r"class\(es\) 1 'x', 2 'y': no case has it"),
        (SEGMENTATION, np.ones((2, 2, 2), int), r"class\(es\) 2 'y': no label map contains it"),
    ],
)
def test_labels_are_checked_against_the_classes(kind, labels, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatasetError, match=message):
        kind.check_labels(labels, case_ids=np.array(["a", "b"]), classes=["bg", "x", "y"], task="t")
    DETECTION.check_labels(labels, case_ids=np.array(["a", "b"]), classes=["x"], task="t")

"""``evaluate``: score prediction files, as a challenge's evaluation script does."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from medarena.cli.errors import command_settings, errors
from medarena.cli.render import FormatOption, OutputFormat, print_evaluation


class EvaluationKind(StrEnum):
    classification = "classification"
    segmentation = "segmentation"
    detection = "detection"


def evaluate(
    kind: Annotated[
        EvaluationKind, typer.Option("--kind", help="classification, segmentation or detection")
    ],
    reference: Annotated[
        Path,
        typer.Option(
            "--reference", help="labels: CSV, folder of label maps, or LUNA16 annotations CSV"
        ),
    ],
    predictions: Annotated[
        Path,
        typer.Option(
            "--predictions",
            help="probabilities CSV, folder of label maps, or LUNA16 candidates CSV",
        ),
    ],
    cases: Annotated[
        Path | None, typer.Option("--cases", help="the cases (scans) to score, one id per line")
    ] = None,
    excluded: Annotated[
        Path | None, typer.Option("--excluded", help="detection: LUNA16 annotations_excluded.csv")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="bootstrap samples for the intervals")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="bootstrap seed")] = 0,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Score prediction files like a challenge's evaluation script (see docs/metrics.md)."""
    settings = command_settings()
    with errors(settings):
        from medarena.scoring.evaluation import evaluate as run_evaluation

        result = run_evaluation(
            kind.value,
            reference,
            predictions,
            cases=cases,
            excluded=excluded,
            n_bootstrap=bootstrap,
            seed=seed,
        )
        print_evaluation(result, predictions, fmt)

"""Numbers that may be missing, as the store, tables and JSON hold them.

Two rules, kept apart on purpose:

- *missing*: a value that does not exist is NaN in arrays and frames (a metric undefined on a
  case, a trial without a value, pandas' ``NA`` and ``NaT``) and ``None`` in the store and in
  the rows built from it; infinity is a value (a distance to nothing) and is kept:
  :func:`missing_to_none` (any scalar) and :func:`float_or_none` (a number to store).
- *strict JSON* has neither NaN nor infinity: :func:`strict_json` turns every non-finite number
  into ``None`` (``null``), for output that must parse anywhere (``medarena evaluate --format
  json``, a metric's range).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def missing_to_none(value: Any) -> Any:
    """``None`` for a missing value (``None``, NaN, pandas' ``NA`` and ``NaT``), else the value as
    a plain Python scalar (numpy and pandas scalars unwrapped); infinity is kept."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def float_or_none(value: float | None) -> float | None:
    """A number as the store keeps it: ``None`` when missing (NaN), else a Python float."""
    return None if value is None or math.isnan(value) else float(value)


def strict_json(obj: Any) -> Any:
    """``obj`` with only what strict JSON holds: dicts (keys as strings), lists and tuples walked,
    numpy scalars unwrapped, NaN and infinities as ``None``."""
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj

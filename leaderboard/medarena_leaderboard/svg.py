"""Inline SVG pictures, drawn on the server: a forest plot of a leaderboard and learning curves.

Pure functions from numbers to markup (no JavaScript, no plotting library), so a page is one
request and the pictures are tested like any other string.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

MISSING = "\N{EN DASH}"  # shown for a value that is missing

# Colour-blind-safe qualitative palette (Okabe and Ito).
PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"]


@dataclass(frozen=True)
class ForestRow:
    """One entry of a forest plot: a label, a value and its interval (any of them missing)."""

    label: str
    detail: str
    value: float | None
    low: float | None
    high: float | None
    rank: int | None = None


def nice_ticks(low: float, high: float, *, count: int = 5) -> list[float]:
    """About ``count`` round tick values within ``[low, high]`` (steps of 1, 2 or 5 x 10^k)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10)), key=lambda s: abs(math.log(s / raw)))
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _extent(
    values: Sequence[float], bounds: tuple[float, float], *, pad: float = 0.08
) -> tuple[float, float]:
    """The axis range: the data's range padded a little, clipped to the metric's range."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return (bounds[0], bounds[1]) if all(map(math.isfinite, bounds)) else (0.0, 1.0)
    low, high = min(finite), max(finite)
    span = high - low or max(abs(high), 1.0) * 0.1
    low, high = low - span * pad, high + span * pad
    if math.isfinite(bounds[0]):
        low = max(low, bounds[0])
    if math.isfinite(bounds[1]):
        high = min(high, bounds[1])
    return low, high


def _fmt(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"


def _tick_label(value: float) -> str:
    return f"{value:g}"


def forest_plot(
    rows: Sequence[ForestRow],
    *,
    metric: str,
    higher_is_better: bool,
    bounds: tuple[float, float] = (-math.inf, math.inf),
    width: int = 860,
) -> Markup:
    """A forest plot: per row, the value as a dot and its 95% interval as a whisker, best first.

    Rows without a value are listed with "no score". The axis spans the data, clipped to
    ``bounds`` (the metric's range).
    """
    row_height, top, bottom = 30, 34, 40
    left, right = 250, 170
    height = top + bottom + row_height * max(len(rows), 1)
    plot_w = width - left - right
    values = [v for r in rows for v in (r.value, r.low, r.high) if v is not None]
    lo, hi = _extent(values, bounds)

    def x(value: float) -> float:
        return left + (min(max(value, lo), hi) - lo) / (hi - lo) * plot_w

    arrow = "higher is better →" if higher_is_better else "← lower is better"
    parts = [
        f'<svg class="forest" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="forest-title">',
        f'<title id="forest-title">{escape(metric)} with 95% confidence intervals</title>',
        f'<text class="axis-title" x="{left + plot_w / 2:.1f}" y="16" text-anchor="middle">'
        f"{escape(metric)} (95% CI) — {escape(arrow)}</text>",
    ]
    axis_y = height - bottom + 6
    for tick in nice_ticks(lo, hi):
        tx = x(tick)
        parts.append(
            f'<line class="grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="{top - 6}" y2="{axis_y}"/>'
            f'<text class="tick" x="{tx:.1f}" y="{axis_y + 16}" text-anchor="middle">'
            f"{_tick_label(tick)}</text>"
        )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{left + plot_w}" y1="{axis_y}" y2="{axis_y}"/>'
    )
    if not rows:
        parts.append(
            f'<text class="empty" x="{left + plot_w / 2:.1f}" y="{top + row_height / 2 + 4}" '
            'text-anchor="middle">no scored submissions yet</text>'
        )
    for i, row in enumerate(rows):
        cy = top + row_height * i + row_height / 2
        if i % 2 == 0:
            parts.append(
                f'<rect class="band" x="0" y="{cy - row_height / 2:.1f}" width="{width}" '
                f'height="{row_height}"/>'
            )
        rank = MISSING if row.rank is None else str(row.rank)
        parts.append(
            f'<text class="label" x="8" y="{cy + 4:.1f}"><tspan class="rank">{rank}</tspan>'
            f'<tspan x="36">{escape(row.label)}</tspan>'
            f'<tspan class="detail" dx="6">{escape(row.detail)}</tspan></text>'
        )
        if row.value is None:
            parts.append(f'<text class="empty" x="{left + 6}" y="{cy + 4:.1f}">no score</text>')
            continue
        if row.low is not None and row.high is not None:
            x1, x2 = x(row.low), x(row.high)
            parts.append(
                f'<line class="whisker" x1="{x1:.1f}" x2="{x2:.1f}" y1="{cy:.1f}" y2="{cy:.1f}"/>'
                f'<line class="whisker" x1="{x1:.1f}" x2="{x1:.1f}" y1="{cy - 6:.1f}" '
                f'y2="{cy + 6:.1f}"/>'
                f'<line class="whisker" x1="{x2:.1f}" x2="{x2:.1f}" y1="{cy - 6:.1f}" '
                f'y2="{cy + 6:.1f}"/>'
            )
            interval = f" [{_fmt(row.low)}, {_fmt(row.high)}]"
        else:
            interval = ""
        parts.append(
            f'<circle class="point{" best" if row.rank == 1 else ""}" cx="{x(row.value):.1f}" '
            f'cy="{cy:.1f}" r="5.5"><title>{escape(row.label)}: {_fmt(row.value)}'
            f"{interval}</title></circle>"
            f'<text class="value" x="{width - right + 14}" y="{cy + 4:.1f}">'
            f'{_fmt(row.value)}<tspan class="detail">{interval}</tspan></text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def curves_plot(
    curves: dict[int, list[tuple[int, float]]],
    *,
    metric: str,
    higher_is_better: bool,
    bounds: tuple[float, float] = (-math.inf, math.inf),
    highlight: int | None = None,
    width: int = 860,
    height: int = 320,
) -> Markup:
    """Learning curves: one polyline per trial (value per epoch), ``highlight`` drawn bold."""
    left, right, top, bottom = 56, 130, 20, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [p for curve in curves.values() for p in curve]
    max_epoch = max((e for e, _ in points), default=1) or 1
    lo, hi = _extent([v for _, v in points], bounds)

    def x(epoch: float) -> float:
        return left + epoch / max_epoch * plot_w

    def y(value: float) -> float:
        return top + (1 - (value - lo) / (hi - lo)) * plot_h

    arrow = "↑ higher is better" if higher_is_better else "↓ lower is better"
    parts = [
        f'<svg class="curves" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="curves-title">',
        f'<title id="curves-title">{escape(metric)} per epoch, one line per trial</title>',
    ]
    for tick in nice_ticks(lo, hi):
        ty = y(tick)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{_tick_label(tick)}</text>"
        )
    for tick in nice_ticks(0, max_epoch, count=min(max_epoch + 1, 8)):
        if tick != int(tick):
            continue
        parts.append(
            f'<text class="tick" x="{x(tick):.1f}" y="{top + plot_h + 16}" '
            f'text-anchor="middle">{int(tick)}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" '
        f'y2="{top + plot_h}"/>'
        f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>'
        f'<text class="axis-title" x="{left + plot_w / 2:.1f}" y="{height - 6}" '
        f'text-anchor="middle">epoch</text>'
        f'<text class="axis-title" x="{left + plot_w + 12}" y="{top + 4}">'
        f"{escape(metric)}</text>"
        f'<text class="tick" x="{left + plot_w + 12}" y="{top + 20}">{escape(arrow)}</text>'
    )
    for i, (number, curve) in enumerate(sorted(curves.items())):
        colour = PALETTE[i % len(PALETTE)]
        bold = " best" if number == highlight else ""
        coords = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in curve)
        last_e, last_v = curve[-1]
        values = [v for _, v in curve]
        best = max(values) if higher_is_better else min(values)
        parts.append(
            f'<polyline class="curve{bold}" points="{coords}" stroke="{colour}">'
            f"<title>trial {number}: best {_fmt(best)}</title></polyline>"
        )
        if len(curve) == 1:
            parts.append(
                f'<circle cx="{x(last_e):.1f}" cy="{y(last_v):.1f}" r="3" fill="{colour}"/>'
            )
        legend_y = top + 44 + 18 * i
        if legend_y < top + plot_h:
            parts.append(
                f'<line x1="{left + plot_w + 12}" x2="{left + plot_w + 32}" y1="{legend_y - 4}" '
                f'y2="{legend_y - 4}" stroke="{colour}" class="curve{bold}"/>'
                f'<text class="legend" x="{left + plot_w + 38}" y="{legend_y}">trial {number}'
                f"{' (best)' if number == highlight else ''}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))

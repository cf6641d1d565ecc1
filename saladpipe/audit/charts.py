"""Charts as inline SVG: bars, scatter, step histograms and lines.

Drawn in Python, so the report needs no chart library and no script to show them.
Every mark carries a <title> with its exact numbers, which browsers show on hover.
Text that comes from data is escaped here, once.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# Tableau 10: distinguishable categorical colours for voices, rounds, series.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
# Viridis at nine evenly spaced stops: a sequential scale that stays readable in grey.
_VIRIDIS = (
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
)
MISSING_COLOR = "#c8c8c8"


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def viridis(t: float) -> str:
    """The viridis colour at t in [0, 1]; grey for NaN."""
    if math.isnan(t):
        return MISSING_COLOR
    t = min(1.0, max(0.0, t)) * (len(_VIRIDIS) - 1)
    lo = min(int(t), len(_VIRIDIS) - 2)
    a, b = _VIRIDIS[lo], _VIRIDIS[lo + 1]
    frac = t - lo
    r, g, bl = (round(x + (y - x) * frac) for x, y in zip(a, b, strict=True))
    return f"#{r:02x}{g:02x}{bl:02x}"


def fmt(value: object) -> str:
    """Floats to four significant digits, integers whole, a dash for None and NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool | int | np.integer | str):
        return str(value)
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round-numbered ticks covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < hi:
        ticks.append(ticks[-1] + step)
    return ticks


@dataclass(frozen=True)
class Scale:
    """A linear map from data values to pixels."""

    lo: float
    hi: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.start + (value - self.lo) / span * (self.end - self.start)


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def _domain(values: np.ndarray, include_zero: bool = False) -> tuple[float, float]:
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    return lo, hi


@dataclass
class Canvas:
    """One SVG chart: a plot area inside margins, and the elements drawn so far."""

    name: str
    title: str
    width: int = 760
    height: int = 300
    left: int = 64
    right: int = 16
    top: int = 28
    bottom: int = 52
    keys: Sequence[tuple[str, str]] = ()  # legend: (label, colour), wrapped above the plot
    parts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Lay the legend out in rows from the left; each extra row grows the chart."""
        self._keys: list[tuple[float, float, str, str]] = []
        x, row = float(self.left), 0
        for label, swatch in self.keys:
            width = 6.6 * len(label) + 26
            if x + width > self.width - self.right and x > self.left:
                x, row = float(self.left), row + 1
            self._keys.append((x, 8.0 + 16 * row, label, swatch))
            x += width
        self.top += 16 * row
        self.height += 16 * row

    @property
    def x0(self) -> float:
        return float(self.left)

    @property
    def x1(self) -> float:
        return float(self.width - self.right)

    @property
    def y0(self) -> float:
        return float(self.height - self.bottom)

    @property
    def y1(self) -> float:
        return float(self.top)

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, text: object, anchor: str = "middle", cls: str = "") -> None:
        klass = f' class="{cls}"' if cls else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>{_esc(text)}</text>')

    def y_axis(self, scale: Scale, label: str, ticks: Sequence[float]) -> None:
        for tick in ticks:
            y = scale(tick)
            self.add(
                f'<line class="grid" x1="{self.x0}" x2="{self.x1}" y1="{y:.1f}" y2="{y:.1f}"/>'
            )
            self.text(self.x0 - 6, y + 4, fmt(tick), anchor="end", cls="tick")
        middle = (self.y0 + self.y1) / 2
        self.add(
            f'<text class="axis-label" transform="translate(14,{middle:.1f}) rotate(-90)" '
            f'text-anchor="middle">{_esc(label)}</text>'
        )

    def x_axis(self, scale: Scale | None, label: str, ticks: Sequence[float] = ()) -> None:
        self.add(
            f'<line class="axis" x1="{self.x0}" x2="{self.x1}" y1="{self.y0}" y2="{self.y0}"/>'
        )
        if scale is not None:
            for tick in ticks:
                self.text(scale(tick), self.y0 + 16, fmt(tick), cls="tick")
        self.text((self.x0 + self.x1) / 2, self.height - 8, label, cls="axis-label")

    def empty(self, message: str) -> None:
        self.text(self.width / 2, self.height / 2, message, cls="empty")

    def render(self) -> str:
        legend = "".join(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="10" height="10" fill="{swatch}"/>'
            f'<text x="{x + 14:.1f}" y="{y + 9:.1f}" text-anchor="start" class="legend">'
            f"{_esc(label)}</text>"
            for x, y, label, swatch in self._keys
        )
        body = "".join(self.parts) + legend
        return (
            f'<svg class="chart" data-chart="{_esc(self.name)}" xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
            f'height="{self.height}" role="img" aria-label="{_esc(self.title)}">'
            f"<title>{_esc(self.title)}</title>{body}</svg>"
        )


@dataclass(frozen=True)
class BarSeries:
    """One series of bars: a value per category (NaN: no bar) and a hover text per bar."""

    name: str
    values: Sequence[float]
    color: str
    titles: Sequence[str] = ()


def bar_chart(
    name: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[BarSeries],
    y_label: str,
    x_label: str,
    errors: Sequence[float] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """Stacked bars per category; `errors` draws ±error whiskers on a single series and
    `notes` writes a short label under each bar (shown when the bars are wide enough)."""
    keys = [(s.name, s.color) for s in series] if len(series) > 1 else []
    canvas = Canvas(name, title, keys=keys)
    n = len(categories)
    if n == 0:
        canvas.empty("no data")
        return canvas.render()
    values = np.array([[float(v) for v in s.values] for s in series])
    totals = np.nansum(np.where(np.isnan(values), 0.0, values), axis=0)
    tops = totals + (np.nan_to_num(np.asarray(errors, dtype=np.float64)) if errors else 0.0)
    lo, hi = _domain(np.concatenate([_finite(tops), _finite(totals)]), include_zero=True)
    ticks = nice_ticks(lo, hi)
    y = Scale(ticks[0], ticks[-1], canvas.y0, canvas.y1)
    canvas.y_axis(y, y_label, ticks)
    slot = (canvas.x1 - canvas.x0) / n
    bar = max(1.0, slot * 0.75)
    base = np.zeros(n)
    for s in series:
        for i, value in enumerate(s.values):
            if value is None or math.isnan(value):
                continue
            x = canvas.x0 + i * slot + (slot - bar) / 2
            top, bottom = y(base[i] + value), y(base[i])
            tip = s.titles[i] if i < len(s.titles) else f"{categories[i]}: {fmt(value)}"
            canvas.add(
                f'<rect class="mark" x="{x:.1f}" y="{min(top, bottom):.1f}" width="{bar:.1f}" '
                f'height="{max(abs(bottom - top), 0.5):.1f}" fill="{s.color}">'
                f"<title>{_esc(tip)}</title></rect>"
            )
            base[i] += value
    if errors is not None:
        for i, error in enumerate(errors):
            if error is None or math.isnan(error) or math.isnan(totals[i]):
                continue
            cx = canvas.x0 + (i + 0.5) * slot
            hi_y, lo_y = y(totals[i] + error), y(max(totals[i] - error, ticks[0]))
            canvas.add(
                f'<path class="whisker" d="M{cx:.1f},{lo_y:.1f}V{hi_y:.1f}'
                f"M{cx - bar / 4:.1f},{hi_y:.1f}h{bar / 2:.1f}"
                f'M{cx - bar / 4:.1f},{lo_y:.1f}h{bar / 2:.1f}"/>'
            )
    show_labels = slot >= 14
    for i, category in enumerate(categories):
        cx = canvas.x0 + (i + 0.5) * slot
        if show_labels or i % max(1, math.ceil(14 / slot)) == 0:
            canvas.text(cx, canvas.y0 + 14, category, cls="tick")
        if notes and slot >= 28:
            canvas.text(cx, canvas.y0 + 27, notes[i], cls="note")
    canvas.x_axis(None, x_label)
    return canvas.render()


@dataclass(frozen=True)
class Layer:
    """Points of one kind in a scatter chart."""

    x: np.ndarray
    y: np.ndarray
    fill: Sequence[str]
    titles: Sequence[str]
    radius: float = 3.0
    shape: str = "dot"  # dot | ring | label
    labels: Sequence[str] = ()


def scatter_chart(
    name: str,
    title: str,
    layers: Sequence[Layer],
    x_label: str,
    y_label: str,
    diagonal: bool = False,
    color_bar: tuple[float, float, str] | None = None,
    legend: Sequence[tuple[str, str]] = (),
    height: int = 300,
) -> str:
    """Points on two linear axes; `diagonal` draws y = x, `color_bar` a viridis key."""
    canvas = Canvas(name, title, height=height, right=90 if color_bar else 16, keys=legend)
    xs = np.concatenate([_finite(layer.x) for layer in layers]) if layers else np.array([])
    ys = np.concatenate([_finite(layer.y) for layer in layers]) if layers else np.array([])
    if xs.size == 0:
        canvas.empty("no data")
        return canvas.render()
    x_lo, x_hi = _domain(xs)
    y_lo, y_hi = _domain(ys)
    if diagonal:
        x_lo = y_lo = min(x_lo, y_lo, 0.0)
        x_hi = y_hi = max(x_hi, y_hi)
    x_ticks, y_ticks = nice_ticks(x_lo, x_hi), nice_ticks(y_lo, y_hi)
    x = Scale(x_ticks[0], x_ticks[-1], canvas.x0, canvas.x1)
    y = Scale(y_ticks[0], y_ticks[-1], canvas.y0, canvas.y1)
    canvas.y_axis(y, y_label, y_ticks)
    canvas.x_axis(x, x_label, x_ticks)
    if diagonal:
        end = min(x_ticks[-1], y_ticks[-1])
        canvas.add(
            f'<line class="diagonal" x1="{x(x_ticks[0]):.1f}" y1="{y(y_ticks[0]):.1f}" '
            f'x2="{x(end):.1f}" y2="{y(end):.1f}"/>'
        )
    for layer in layers:
        for i in range(len(layer.x)):
            px, py = float(layer.x[i]), float(layer.y[i])
            if not (math.isfinite(px) and math.isfinite(py)):
                continue
            tip = f"<title>{_esc(layer.titles[i])}</title>" if layer.titles else ""
            cx, cy = x(px), y(py)
            if layer.shape == "ring":
                canvas.add(
                    f'<circle class="mark ring" cx="{cx:.1f}" cy="{cy:.1f}" r="{layer.radius}" '
                    f'stroke="{layer.fill[i]}">{tip}</circle>'
                )
            elif layer.shape == "label":
                canvas.add(
                    f'<g class="mark centroid"><circle cx="{cx:.1f}" cy="{cy:.1f}" '
                    f'r="{layer.radius}"/>{tip}</g>'
                )
                canvas.text(cx + layer.radius + 2, cy - layer.radius, layer.labels[i], "start")
            else:
                canvas.add(
                    f'<circle class="mark" cx="{cx:.1f}" cy="{cy:.1f}" r="{layer.radius}" '
                    f'fill="{layer.fill[i]}">{tip}</circle>'
                )
                if layer.labels:
                    canvas.text(cx + layer.radius + 2, cy - layer.radius, layer.labels[i], "start")
    if color_bar is not None:
        _color_bar(canvas, *color_bar)
    return canvas.render()


def _color_bar(canvas: Canvas, lo: float, hi: float, label: str) -> None:
    x = canvas.x1 + 24
    steps = 24
    height = (canvas.y0 - canvas.y1) / steps
    for i in range(steps):
        y = canvas.y0 - (i + 1) * height
        canvas.add(
            f'<rect x="{x}" y="{y:.1f}" width="12" height="{height + 0.5:.1f}" '
            f'fill="{viridis((i + 0.5) / steps)}"/>'
        )
    canvas.text(x + 16, canvas.y0, fmt(lo), anchor="start", cls="tick")
    canvas.text(x + 16, canvas.y1 + 8, fmt(hi), anchor="start", cls="tick")
    canvas.text(x + 6, canvas.y1 - 8, label, cls="legend")


@dataclass(frozen=True)
class Distribution:
    """Values of one group (a voice, the pool) for a histogram."""

    name: str
    values: np.ndarray
    color: str


def histogram_chart(
    name: str, title: str, groups: Sequence[Distribution], x_label: str, bins: int = 30
) -> str:
    """One step line per group on shared bins; heights are each group's share of its rows."""
    finite = [(g, _finite(g.values)) for g in groups]
    finite = [(g, v) for g, v in finite if v.size]
    canvas = Canvas(name, title, keys=[(f"{g.name} ({v.size})", g.color) for g, v in finite])
    if not finite:
        canvas.empty("no data")
        return canvas.render()
    lo, hi = _domain(np.concatenate([v for _, v in finite]))
    edges = np.linspace(lo, hi, bins + 1)
    shares = [np.histogram(v, bins=edges)[0] / v.size for _, v in finite]
    y_ticks = nice_ticks(0.0, float(max(s.max() for s in shares)))
    x_ticks = nice_ticks(lo, hi)
    x = Scale(x_ticks[0], x_ticks[-1], canvas.x0, canvas.x1)
    y = Scale(y_ticks[0], y_ticks[-1], canvas.y0, canvas.y1)
    canvas.y_axis(y, "share of rows", y_ticks)
    canvas.x_axis(x, x_label, x_ticks)
    for (group, values), share in zip(finite, shares, strict=True):
        path = [f"M{x(edges[0]):.1f},{y(0):.1f}"]
        for i, height in enumerate(share):
            path.append(f"V{y(height):.1f}H{x(edges[i + 1]):.1f}")
        path.append(f"V{y(0):.1f}")
        tip = (
            f"{group.name}: {values.size} rows, median {fmt(float(np.median(values)))}, "
            f"range {fmt(float(values.min()))} to {fmt(float(values.max()))}"
        )
        canvas.add(
            f'<path class="mark step" d="{"".join(path)}" stroke="{group.color}" '
            f'fill="{group.color}"><title>{_esc(tip)}</title></path>'
        )
    return canvas.render()


@dataclass(frozen=True)
class Line:
    """One line of a line chart; `strong` lines are drawn thick and named in the legend."""

    name: str
    values: Sequence[float]
    color: str
    strong: bool = False


def line_chart(
    name: str,
    title: str,
    x_values: Sequence[int],
    lines: Sequence[Line],
    x_label: str,
    y_label: str,
) -> str:
    """Lines over integer x positions (rounds); NaN breaks a line."""
    canvas = Canvas(name, title, keys=[(line.name, line.color) for line in lines if line.strong])
    ys = np.concatenate([_finite(line.values) for line in lines]) if lines else np.array([])
    if ys.size == 0 or not x_values:
        canvas.empty("no data")
        return canvas.render()
    y_ticks = nice_ticks(*_domain(ys))
    x_lo, x_hi = min(x_values), max(x_values)
    x = Scale(x_lo - 0.25, x_hi + 0.25, canvas.x0, canvas.x1)
    y = Scale(y_ticks[0], y_ticks[-1], canvas.y0, canvas.y1)
    canvas.y_axis(y, y_label, y_ticks)
    canvas.x_axis(x, x_label, list(x_values))
    for line in sorted(lines, key=lambda item: item.strong):
        points = [
            (x(xv), y(float(v)))
            for xv, v in zip(x_values, line.values, strict=True)
            if v is not None and math.isfinite(v)
        ]
        if not points:
            continue
        d = "M" + "L".join(f"{px:.1f},{py:.1f}" for px, py in points)
        cls = "mark line strong" if line.strong else "mark line"
        tip = f"{line.name}: " + ", ".join(
            f"{xv}: {fmt(float(v))}" for xv, v in zip(x_values, line.values, strict=True)
        )
        canvas.add(
            f'<path class="{cls}" d="{d}" stroke="{line.color}"><title>{_esc(tip)}</title></path>'
        )
        for px, py in points:
            canvas.add(
                f'<circle class="vertex" cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{line.color}"/>'
            )
    return canvas.render()

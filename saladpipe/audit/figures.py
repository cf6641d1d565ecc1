"""The report's charts, from the audit data: clusters, pool map, distributions, rounds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from saladpipe.audit.charts import (
    BarSeries,
    Distribution,
    Layer,
    Line,
    bar_chart,
    color,
    fmt,
    line_chart,
    scatter_chart,
    viridis,
)
from saladpipe.audit.pool_map import PoolMap
from saladpipe.data_schemas import tables

GAP_COLOR = "#4e79a7"
SELECTED_COLOR = "#e15759"
# More voices than this are drawn as the most frequent ones plus "other voices".
MAX_GROUPS = 8


def _array(rows: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows])


def _normalized(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.full(values.shape, np.nan)
    lo, hi = float(finite.min()), float(finite.max())
    return (values - lo) / (hi - lo) if hi > lo else np.where(np.isfinite(values), 0.5, np.nan)


def cluster_gap_chart(clusters: Sequence[dict[str, Any]], round_index: int) -> str:
    """Mean probe gap per cluster with ±1 standard deviation and the probe count."""
    gap, std = _array(clusters, "gap_mean"), _array(clusters, "gap_std")
    probes = [r.get("probe_count") for r in clusters]
    titles = [
        f"cluster {r['cluster']}: gap {fmt(g)} ± {fmt(s)} over {n} probes"
        for r, g, s, n in zip(clusters, gap, std, probes, strict=True)
    ]
    return bar_chart(
        "cluster-gap",
        f"Gap per cluster (round {round_index}): mean misalignment of its probes",
        [str(r["cluster"]) for r in clusters],
        [BarSeries("gap", gap.tolist(), GAP_COLOR, titles)],
        "mean probe misalignment",
        "cluster (whiskers: ±1 std; n: scored probes)",
        errors=np.nan_to_num(std).tolist(),
        notes=[f"n={n}" for n in probes],
    )


def share_chart(clusters: Sequence[dict[str, Any]], round_index: int) -> str:
    """P(c) against the pool's share: above the diagonal, a cluster is drawn more than its size."""
    share, probability = _array(clusters, "pool_share"), _array(clusters, "probability")
    gap = _array(clusters, "gap_mean")
    finite = gap[np.isfinite(gap)]
    titles = [
        f"cluster {r['cluster']}: P(c) {fmt(p)}, pool share {fmt(s)}, gap {fmt(g)}"
        for r, p, s, g in zip(clusters, probability, share, gap, strict=True)
    ]
    layer = Layer(
        share,
        probability,
        [viridis(t) for t in _normalized(gap)],
        titles,
        radius=5,
        labels=[str(r["cluster"]) for r in clusters],
    )
    bar = (float(finite.min()), float(finite.max()), "gap") if finite.size else None
    return scatter_chart(
        "cluster-share",
        f"P(c) against pool share (round {round_index}); colour: gap",
        [layer],
        "share of the pool",
        "P(c): probability of drawing the cluster",
        diagonal=True,
        color_bar=bar,
    )


def selected_chart(k: int, table: pa.Table, rounds: Sequence[int]) -> str:
    """Texts selected per cluster, stacked by round."""
    clusters = table.column("cluster").to_numpy()
    round_of = table.column("selection_round").to_numpy()
    series = []
    for i, r in enumerate(rounds):
        counts = np.bincount(clusters[round_of == r], minlength=k)[:k]
        titles = [f"cluster {c}: {n} selected in round {r}" for c, n in enumerate(counts)]
        series.append(BarSeries(f"round {r}", counts.astype(float).tolist(), color(i), titles))
    return bar_chart(
        "cluster-selected",
        "Texts selected per cluster" + (", by round" if len(rounds) > 1 else ""),
        [str(c) for c in range(k)],
        series,
        "texts selected",
        "cluster",
    )


def map_chart(pool_map: PoolMap, gap_label: str) -> str:
    """The pool's sample on two PCA axes, coloured by gap; rings mark selected texts."""
    gap = pool_map.gap
    finite = gap[np.isfinite(gap)]
    tips = [
        f"{t}: cluster {c}, gap {fmt(g)}" + (f", selected in round {r}" if r >= 0 else "")
        for t, c, g, r in zip(
            pool_map.text_id, pool_map.cluster, gap, pool_map.selected_round, strict=True
        )
    ]
    x, y = pool_map.xy[:, 0], pool_map.xy[:, 1]
    layers = [Layer(x, y, [viridis(t) for t in _normalized(gap)], tips, radius=2.5)]
    rounds = sorted(set(pool_map.selected_round[pool_map.selected_round >= 0].tolist()))
    legend = []
    for i, r in enumerate(rounds):
        mask = pool_map.selected_round == r
        ring = SELECTED_COLOR if len(rounds) == 1 else color(i)
        layers.append(
            Layer(
                x[mask],
                y[mask],
                [ring] * int(mask.sum()),
                [tip for tip, m in zip(tips, mask, strict=True) if m],
                radius=4.5,
                shape="ring",
            )
        )
        legend.append((f"selected, round {r}", ring))
    if pool_map.centroids is not None:
        c = pool_map.centroids
        layers.append(
            Layer(
                c[:, 0],
                c[:, 1],
                ["#000"] * len(c),
                [f"centroid of cluster {i}" for i in range(len(c))],
                radius=3,
                shape="label",
                labels=[str(i) for i in range(len(c))],
            )
        )
        legend.append(("centroid", "#222"))
    first, second = pool_map.explained
    bar = (float(finite.min()), float(finite.max()), "gap") if finite.size else None
    return scatter_chart(
        "pool-map",
        f"Corpus embeddings on two PCA axes; colour: {gap_label}",
        layers,
        f"PC 1 ({first:.0%} of variance)",
        f"PC 2 ({second:.0%} of variance)",
        color_bar=bar,
        legend=legend,
        height=480,
    )


def groups_by(table: pa.Table, key: str, values: str) -> list[Distribution]:
    """Values of `values` grouped by `key` (nulls left out), the most frequent groups first."""
    codes = table.column(key).combine_chunks().dictionary_encode()
    index = codes.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    names = tables.strings(codes.dictionary)
    data = table.column(values).to_numpy(zero_copy_only=False).astype(np.float64)
    counts = np.bincount(index[index >= 0], minlength=len(names))
    ranked = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i]]
    shown = ranked if len(ranked) <= MAX_GROUPS else ranked[: MAX_GROUPS - 1]
    groups = [Distribution(names[i], data[index == i], color(n + 1)) for n, i in enumerate(shown)]
    rest = np.isin(index, ranked[len(shown) :])
    if rest.any():
        groups.append(Distribution("other voices", data[rest], color(len(shown) + 1)))
    return groups


def rounds_chart(gaps: dict[int, np.ndarray], movers: Sequence[int]) -> str:
    """Each cluster's mean gap per round; the clusters that moved most drawn strong."""
    rounds = sorted(gaps)
    k = max(len(g) for g in gaps.values())
    lines = []
    for c in range(k):
        values = [float(gaps[r][c]) if c < len(gaps[r]) else np.nan for r in rounds]
        strong = c in movers
        tint = color(movers.index(c)) if strong else "#c9c9c9"
        lines.append(Line(f"cluster {c}", values, tint, strong))
    return line_chart(
        "rounds-gap",
        "Mean probe gap per cluster, round by round",
        rounds,
        lines,
        "selection round",
        "mean probe misalignment",
    )

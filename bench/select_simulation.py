"""How much of the true gap each strategy captures per unit of budget, against `random`.

Synthetic gap landscapes where the truth is known: K = 64 clusters of uneven size
(Dirichlet), a true gap per cluster, and a true gap per text (its cluster's times a
log-normal spread). As in the pipeline, the strategies never see the truth: each
cluster is measured by 8 probes with measurement noise, and per-text estimates (what
propagation would give) are the true text gap with log-normal noise (σ = 0.5, or 1.5
for the "poor" ones): how good real estimates are is an assumption. The score of a
pick is its true gap; a strategy's capture is the sum over its picks, divided by what
`random` captured with the same budget in the same run (1.0 = no better than random).
Each number is the mean over 5 seeds (new probes, noise and draws each).

Usage: .venv/bin/python -m bench.select_simulation [--out docs/selection_simulation.png]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

# The bench folder holds a select.py that would shadow the standard-library module.
_HERE = Path(__file__).parent.resolve()
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402

from saladpipe.data_schemas.config import SelectSection  # noqa: E402
from saladpipe.selectors import Budget, Pool, VectorLookup, create_strategy  # noqa: E402

K = 64
N = 50_000
PROBES = 8
SEEDS = 5
FRACTIONS = [0.002, 0.005, 0.01, 0.02, 0.05]
LANDSCAPES: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "a few weak spots": lambda rng: np.where(np.arange(K) < 3, 4.0, 1.0)[rng.permutation(K)],
    "graded": lambda rng: rng.lognormal(0.0, 0.6, K),
    "nearly flat": lambda rng: rng.lognormal(0.0, 0.15, K),
}
# (label, strategy, gamma, which gap the pool carries per text)
STRATEGIES = [
    ("random", "random", 0.0, "cluster"),
    ("stratified", "stratified", 0.0, "cluster"),
    ("salad γ=1", "salad", 1.0, "cluster"),
    ("salad γ=2", "salad", 2.0, "cluster"),
    ("salad γ=5", "salad", 5.0, "cluster"),
    ("salad γ=10", "salad", 10.0, "cluster"),
    ("top_k, cluster gap", "top_k", 0.0, "cluster"),
    ("top_k, text estimate", "top_k", 0.0, "estimate"),
    ("top_k, poor estimate", "top_k", 0.0, "poor estimate"),
    ("diverse, text estimate", "diverse", 0.0, "estimate"),
]


def world(landscape: str, seed: int) -> dict[str, np.ndarray]:
    """One pool: clusters, true gaps, probe-measured cluster gaps, noisy text estimates."""
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(N, rng.dirichlet(np.full(K, 2.0)))
    clusters = rng.permutation(np.repeat(np.arange(K), sizes))
    cluster_truth = LANDSCAPES[landscape](rng)
    text_truth = cluster_truth[clusters] * rng.lognormal(0.0, 0.5, N)
    measured = np.zeros(K)
    for c in range(K):
        members = np.flatnonzero(clusters == c)
        if members.size == 0:
            continue
        probes = rng.choice(members, size=min(PROBES, members.size), replace=False)
        measured[c] = np.mean(text_truth[probes] * rng.lognormal(0.0, 0.3, probes.size))
    centers = rng.standard_normal((K, 16))
    vectors = centers[clusters] + 0.7 * rng.standard_normal((N, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return {
        "clusters": clusters,
        "truth": text_truth,
        "measured": measured,
        "estimate": text_truth * rng.lognormal(0.0, 0.5, N),
        "poor estimate": text_truth * rng.lognormal(0.0, 1.5, N),
        "vectors": vectors,
    }


def _lookup(vectors: np.ndarray) -> VectorLookup:
    """The vectors of the given rows of an in-memory pool."""
    return lambda rows: vectors[rows]


def run() -> dict[str, dict[str, np.ndarray]]:
    """Capture ratio against random: [landscape][strategy] -> array over FRACTIONS."""
    results: dict[str, dict[str, np.ndarray]] = {}
    for landscape in LANDSCAPES:
        captured = {label: np.zeros(len(FRACTIONS)) for label, *_ in STRATEGIES}
        covered = {label: 0.0 for label, *_ in STRATEGIES}
        for seed in range(SEEDS):
            w = world(landscape, seed)
            for label, name, gamma, gap in STRATEGIES:
                pool = Pool(
                    w["clusters"],
                    w["measured"],
                    text_gap=None if gap == "cluster" else w[gap],
                    vectors=_lookup(w["vectors"]),
                )
                strategy = create_strategy(
                    SelectSection.model_validate({"strategy": name, "salad": {"gamma": gamma}})
                )
                for i, fraction in enumerate(FRACTIONS):
                    picks = strategy.select(
                        pool, Budget(round(fraction * N)), np.random.default_rng([seed, i])
                    )
                    captured[label][i] += w["truth"][picks.indices].sum()
                    if fraction == 0.01:
                        covered[label] += np.unique(w["clusters"][picks.indices]).size / SEEDS
        base = captured["random"]
        results[landscape] = {label: values / base for label, values in captured.items()}
        _print(landscape, results[landscape], covered)
    return results


def _print(landscape: str, ratios: dict[str, np.ndarray], covered: dict[str, float]) -> None:
    header = " ".join(f"{f:>7.1%}" for f in FRACTIONS)
    print(f"\n{landscape}: true gap captured / random's, by budget (share of the pool)")
    print(f"{'strategy':>24} {header}  clusters hit at 1%")
    for label, values in ratios.items():
        cells = " ".join(f"{v:>7.2f}" for v in values)
        print(f"{label:>24} {cells}  {covered[label]:>6.1f} of {K}")


def plot(results: dict[str, dict[str, np.ndarray]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.2), sharey=True)
    for ax, (landscape, ratios) in zip(axes, results.items(), strict=True):
        for label, values in ratios.items():
            style = "--" if label.startswith(("random", "stratified")) else "-"
            ax.plot(FRACTIONS, values, style, marker="o", markersize=3, label=label)
        ax.set_xscale("log")
        ax.set_xticks(FRACTIONS, [f"{f:.1%}" for f in FRACTIONS])
        ax.minorticks_off()
        ax.set_title(landscape)
        ax.set_xlabel("budget (share of the pool)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("true gap captured / random")
    axes[-1].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Selection on synthetic gap landscapes (K = {K}, {N:,} texts, {SEEDS} seeds)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"\nplot: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/selection_simulation.png"))
    args = parser.parse_args()
    plot(run(), args.out)


if __name__ == "__main__":
    main()

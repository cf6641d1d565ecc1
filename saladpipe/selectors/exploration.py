"""Exploration across rounds: optimism for clusters whose gap rests on few probes.

A cluster's gap is the mean of its probes' scores; with two probes that mean is
noisy, and SALAD's M(c)^γ turns an unlucky low estimate into a cluster that is never
drawn again. Treating clusters as arms of a bandit fixes that: `ucb` adds
weight × standard error, `thompson` draws the gap from N(mean, stderr²) each round.
"""

from __future__ import annotations

import numpy as np

from saladpipe.selectors.errors import SelectionError

# A cluster's own spread counts as this many probes' worth against the pooled spread.
_PRIOR_PROBES = 2.0


def explored_gaps(
    gap_mean: np.ndarray,
    gap_std: np.ndarray,
    probe_count: np.ndarray,
    method: str,
    weight: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The gap each cluster is weighted by: measured (`none`), optimistic or sampled.

    Clusters with no scored probe take the mean of the others; their standard error is
    the pooled per-probe spread, as if one probe had been scored. The result is >= 0.
    """
    if weight < 0:
        raise SelectionError(f"exploration weight must be >= 0, got {weight}")
    scored = (probe_count > 0) & np.isfinite(gap_mean)
    if not scored.any():
        raise SelectionError("no cluster has a scored probe, so no cluster has a gap estimate")
    mean = np.where(scored, gap_mean, gap_mean[scored].mean())
    if method == "none":
        return mean
    if method not in ("ucb", "thompson"):
        raise SelectionError(f"unknown exploration {method!r} (have: none, ucb, thompson)")
    stderr = _spread(gap_mean, gap_std, probe_count, scored) / np.sqrt(np.maximum(probe_count, 1))
    if method == "ucb":
        return mean + weight * stderr
    return np.maximum(mean + weight * stderr * rng.standard_normal(mean.size), 0.0)


def _spread(
    gap_mean: np.ndarray, gap_std: np.ndarray, probe_count: np.ndarray, scored: np.ndarray
) -> np.ndarray:
    """Per-probe standard deviation of each cluster, shrunk towards the pooled one."""
    multi = (probe_count >= 2) & np.isfinite(gap_std)
    dof = np.where(multi, probe_count - 1, 0).astype(np.float64)
    if multi.any():
        pooled_var = float(np.sum(dof * np.where(multi, gap_std, 0.0) ** 2) / dof.sum())
    elif scored.sum() >= 2:
        pooled_var = float(np.var(gap_mean[scored], ddof=1))
    else:  # one scored cluster with one probe: as uncertain as the value itself
        pooled_var = float(gap_mean[scored][0] ** 2)
    own_var = np.where(multi, gap_std, 0.0) ** 2
    return np.sqrt((dof * own_var + _PRIOR_PROBES * pooled_var) / (dof + _PRIOR_PROBES))

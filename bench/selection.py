"""Selection at corpus scale, and faiss k-means against scikit-learn, in one run.

Part 1: time and peak memory of each strategy picking 1% of pools of 100k, 1M and 10M
texts in K = 128 clusters, each in a fresh process (peak RSS is the process's), against
a bare baseline measured the same way: numpy's `Generator.choice(N, B, replace=False)`
on the same arrays. `diverse` and near-duplicate removal need embeddings and are
measured on 100k texts with 384-d vectors.

Part 2: clustering the same 200k x 384 unit vectors (a mixture of 128 directions) into
K = 128 with faiss k-means (20 iterations, every point used) and with scikit-learn's
MiniBatchKMeans (20 epochs), with the inertia of both computed the same way; plus the
pipeline's own fits (faiss on the 256-per-centroid sample, and balanced k-means).

Usage: .venv/bin/python -m bench.selection [--sizes 100000 1000000 10000000] [--skip-kmeans]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

K = 128
DIM = 384


def _pool_arrays(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    clusters = rng.integers(0, K, n).astype(np.int32)
    cluster_gap = rng.gamma(2.0, 0.5, K)
    text_gap = cluster_gap[clusters] * rng.lognormal(0.0, 0.3, n)
    return clusters, cluster_gap, text_gap


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


class _Clock:
    """Wall and process CPU seconds of a block (CPU time counts every thread)."""

    def __enter__(self) -> _Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def child(case: str, n: int) -> dict[str, float]:
    """One measurement in this (fresh) process: seconds and peak RSS in GB."""
    from saladpipe.data_schemas.config import SelectSection
    from saladpipe.selectors import Budget, NearDuplicates, Pool, create_strategy

    clusters, cluster_gap, text_gap = _pool_arrays(n)
    budget = n // 100
    vectors = None
    if case in ("diverse", "near_duplicates"):
        rng = np.random.default_rng(1)
        centers = rng.standard_normal((K, DIM)).astype(np.float32)
        vectors = centers[clusters] + 2.0 * rng.standard_normal((n, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    data_gb = _peak_gb()
    with _Clock() as clock:
        if case == "baseline":
            count = np.random.default_rng(0).choice(n, size=budget, replace=False).size
        else:
            lookup = None if vectors is None else (lambda rows, v=vectors: v[rows])
            pool = Pool(clusters, cluster_gap, text_gap=text_gap, vectors=lookup)
            name = "random" if case == "near_duplicates" else case
            strategy = create_strategy(
                SelectSection.model_validate({"strategy": name, "salad": {"gamma": 5.0}})
            )
            dedup = None
            if case == "near_duplicates":
                assert lookup is not None
                dedup = NearDuplicates(0.9, lookup, np.zeros(0, np.int64))
            picks = strategy.select(pool, Budget(budget), np.random.default_rng(0), dedup)
            count = picks.indices.size
    return {
        "seconds": clock.wall,
        "cpu": clock.cpu,
        "peak_gb": _peak_gb(),
        "data_gb": data_gb,
        "picked": count,
    }


def measure(case: str, n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def selection_part(sizes: list[int]) -> None:
    print(f"Selection: pick 1% of the pool, K = {K}, budget in texts (fresh process each)")
    print(
        f"{'pool':>10} {'strategy':>16} {'picked':>8} {'wall s':>8} {'cpu s':>7} {'x bare':>7} "
        f"{'peak GB':>8} {'of it data':>10}"
    )
    for n in sizes:
        base = measure("baseline", n)
        cases = ["salad", "random", "stratified", "top_k"]
        if n <= 100_000:
            cases += ["diverse", "near_duplicates"]
        rows = [("bare choice", base)] + [(c, measure(c, n)) for c in cases]
        for name, r in rows:
            ratio = r["seconds"] / base["seconds"]
            print(
                f"{n:>10,} {name:>16} {int(r['picked']):>8,} {r['seconds']:>8.3f} "
                f"{r['cpu']:>7.2f} {ratio:>7.0f} {r['peak_gb']:>8.2f} {r['data_gb']:>10.2f}"
            )


def _inertia(x: np.ndarray, centroids: np.ndarray) -> float:
    """Sum of squared distances to the nearest centroid, the same way for every method."""
    import faiss

    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    distance, _ = index.search(x, 1)
    return float(distance.sum())


def kmeans_part() -> None:
    import faiss
    from sklearn.cluster import MiniBatchKMeans

    from saladpipe.models.kmeans import train_balanced, train_spherical
    from saladpipe.pipeline.cluster import MAX_POINTS_PER_CENTROID

    rng = np.random.default_rng(0)
    n = 200_000
    centers = rng.standard_normal((K, DIM)).astype(np.float32)
    x = centers[rng.integers(0, K, n)] + 1.5 * rng.standard_normal((n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    print(f"\nk-means: {n:,} x {DIM} unit vectors, K = {K}, {faiss.omp_get_max_threads()} threads")
    sample = x[rng.choice(n, size=K * MAX_POINTS_PER_CENTROID, replace=False)]
    results: list[tuple[str, _Clock, np.ndarray]] = []
    with _Clock() as clock:
        km = faiss.Kmeans(DIM, K, niter=20, seed=0, max_points_per_centroid=n, verbose=False)
        km.train(x)
    assert km.centroids is not None  # set by train
    results.append(("faiss k-means, 20 iter, all points", clock, km.centroids))
    for batch in (1024, 4096):
        with _Clock() as clock:
            mbk = MiniBatchKMeans(
                n_clusters=K,
                max_iter=20,
                batch_size=batch,
                n_init=1,
                random_state=0,
                max_no_improvement=None,
            ).fit(x)
        label = f"sklearn MiniBatchKMeans, {mbk.n_iter_} epochs, batch {batch}"
        results.append((label, clock, mbk.cluster_centers_))
    with _Clock() as clock:
        plain = train_spherical(sample, K, 20, 0)
    results.append(("pipeline plain: faiss, 256/centroid", clock, plain))
    with _Clock() as clock:
        balanced = train_balanced(sample, K, 20, 0)
    results.append(("pipeline balanced, 256/centroid", clock, balanced))
    faiss_seconds = results[0][1].wall
    print(f"{'method':>48} {'wall s':>7} {'cpu s':>7} {'x faiss':>8} {'inertia (all 200k)':>19}")
    for name, timed, centroids in results:
        print(
            f"{name:>48} {timed.wall:>7.2f} {timed.cpu:>7.2f} {timed.wall / faiss_seconds:>8.2f} "
            f"{_inertia(x, np.asarray(centroids)):>19.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--skip-kmeans", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    selection_part(args.sizes)
    if not args.skip_kmeans:
        kmeans_part()


if __name__ == "__main__":
    main()

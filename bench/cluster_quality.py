"""How well clusters match domains on the embedded default's corpus, balanced and plain.

The quickstart corpus: WordNet glosses of 12 domains, 500 each (seed 0, at most 400
characters, as `saladpipe run` ingests them), embedded with the builtin
all-MiniLM-L6-v2. Each clustering is scored by adjusted mutual information (AMI)
with the domain labels, against the bare baseline of a random assignment to the same
number of clusters (AMI about 0). K = 12 (one per domain) and K = 24 (the default).

Usage: .venv/bin/python -m bench.cluster_quality
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

# The bench folder holds a select.py that would shadow the standard-library module.
_HERE = Path(__file__).parent.resolve()
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402
from sklearn.metrics import adjusted_mutual_info_score  # noqa: E402

from saladpipe.corpora.wordnet import build_wordnet_corpus  # noqa: E402
from saladpipe.data_schemas.tables import strings  # noqa: E402
from saladpipe.models.embedding import Embedder  # noqa: E402
from saladpipe.models.kmeans import (  # noqa: E402
    capacity,
    preferences,
    stable_match,
    train_balanced,
    train_spherical,
)

ITERATIONS = 20


def main() -> None:
    corpus = build_wordnet_corpus(per_domain=500, seed=0)
    texts = strings(corpus.column("text"))
    keep = [i for i, t in enumerate(texts) if len(t) <= 400]
    texts = [texts[i] for i in keep]
    domains = np.asarray(corpus.column("domain").to_pylist())[keep]
    start = time.perf_counter()
    vectors = Embedder("builtin:all-MiniLM-L6-v2", "cpu", 128).embed(texts)
    print(
        f"{len(texts)} texts of {np.unique(domains).size} domains embedded in "
        f"{time.perf_counter() - start:.1f} s"
    )
    print(
        f"{'K':>3} {'method':>9} {'AMI':>6} {'random AMI':>10} {'sizes min-max':>14} {'fit s':>6}"
    )
    for k in (12, 24):
        chance = adjusted_mutual_info_score(
            domains, np.random.default_rng(0).integers(0, k, len(texts))
        )
        for method in ("plain", "balanced"):
            start = time.perf_counter()
            if method == "plain":
                centroids = train_spherical(vectors, k, ITERATIONS, 0)
                labels = preferences(vectors, centroids, 1)[0][:, 0]
            else:
                centroids = train_balanced(vectors, k, ITERATIONS, 0)
                choices, similarity = preferences(vectors, centroids, k)
                labels = stable_match(choices, similarity, np.full(k, capacity(len(texts), k)))
            seconds = time.perf_counter() - start
            sizes = np.bincount(labels, minlength=k)
            ami = adjusted_mutual_info_score(domains, labels)
            print(
                f"{k:>3} {method:>9} {ami:>6.3f} {chance:>10.3f} "
                f"{f'{sizes.min()}-{sizes.max()}':>14} {seconds:>6.2f}"
            )


if __name__ == "__main__":
    main()

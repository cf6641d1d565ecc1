"""Selection: turning gap scores into what gets synthesized, under a budget."""

from saladpipe.selectors.base import Ordering, Picks, Pool, Strategy, TextInRound, VectorLookup
from saladpipe.selectors.budget import DEFAULT_SPEECH_RATE, Budget, SpeechRate, fit_speech_rate
from saladpipe.selectors.cluster_draw import ClusterDraw
from saladpipe.selectors.dedup import NearDuplicates
from saladpipe.selectors.diverse import DiverseStrategy
from saladpipe.selectors.errors import SelectionError
from saladpipe.selectors.exclusions import ClusterCer, Exclusions, cluster_cer, find_exclusions
from saladpipe.selectors.exploration import explored_gaps
from saladpipe.selectors.registry import (
    STRATEGIES,
    create_strategy,
    recorded_strategy,
    register_strategy,
)
from saladpipe.selectors.salad import SaladStrategy, salad_cluster_probability
from saladpipe.selectors.top_k import TopKStrategy
from saladpipe.selectors.uniform import RandomStrategy, StratifiedStrategy

__all__ = [
    "DEFAULT_SPEECH_RATE",
    "STRATEGIES",
    "Budget",
    "ClusterCer",
    "ClusterDraw",
    "DiverseStrategy",
    "Exclusions",
    "NearDuplicates",
    "Ordering",
    "Picks",
    "Pool",
    "RandomStrategy",
    "SaladStrategy",
    "SelectionError",
    "SpeechRate",
    "Strategy",
    "StratifiedStrategy",
    "TextInRound",
    "TopKStrategy",
    "VectorLookup",
    "cluster_cer",
    "create_strategy",
    "explored_gaps",
    "find_exclusions",
    "fit_speech_rate",
    "recorded_strategy",
    "register_strategy",
    "salad_cluster_probability",
]

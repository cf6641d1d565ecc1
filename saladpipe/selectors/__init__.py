"""Selection: turning gap scores into what gets synthesized, under a budget."""

from saladpipe.selectors.base import Picks, Pool, SelectionError, Strategy
from saladpipe.selectors.registry import STRATEGIES, create_strategy
from saladpipe.selectors.salad import SaladStrategy, salad_cluster_probability

__all__ = [
    "STRATEGIES",
    "Picks",
    "Pool",
    "SaladStrategy",
    "SelectionError",
    "Strategy",
    "create_strategy",
    "salad_cluster_probability",
]

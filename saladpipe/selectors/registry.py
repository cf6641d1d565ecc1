"""Strategy registry: adding a strategy is one module plus one `register_strategy` line
here, or, outside the package, one `register_strategy` call in the module that defines it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saladpipe.data_schemas.config import SelectSection
from saladpipe.data_schemas.registry import Registry
from saladpipe.selectors.base import Strategy
from saladpipe.selectors.diverse import DiverseStrategy
from saladpipe.selectors.salad import SaladStrategy
from saladpipe.selectors.top_k import TopKStrategy
from saladpipe.selectors.uniform import RandomStrategy, StratifiedStrategy

STRATEGIES: Registry[Strategy] = Registry(
    Strategy, "strategy", "select", settings="Params", reserved=SelectSection.model_fields
)
register_strategy = STRATEGIES.register

register_strategy(SaladStrategy)
register_strategy(RandomStrategy)
register_strategy(StratifiedStrategy)
register_strategy(TopKStrategy)
register_strategy(DiverseStrategy)


def create_strategy(config: SelectSection) -> Strategy:
    """The configured strategy with its parameters; every `[select.<name>]` table is
    checked against its strategy's `Params`, so a bad one fails before anything runs."""
    cls = STRATEGIES.resolve(config.strategy)  # first: a module:Class registers its strategy
    tables = config.plugin_tables()
    STRATEGIES.check_tables(tables)
    return _build(cls, tables)


def recorded_strategy(select: Mapping[str, Any]) -> Strategy:
    """The strategy of a `select` section kept as a dict (a finished round's record)."""
    return _build(STRATEGIES.resolve(select["strategy"]), select)


def _build(cls: type[Strategy], tables: Mapping[str, Any]) -> Strategy:
    """`cls` with its table's parameters, which its constructor takes by name."""
    return cls(**dict(STRATEGIES.settings(cls, tables)))

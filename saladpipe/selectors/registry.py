"""Strategy registry: adding a strategy is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable

from saladpipe.data_schemas.config import SelectSection
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.selectors.base import Strategy
from saladpipe.selectors.diverse import DiverseStrategy
from saladpipe.selectors.salad import SaladStrategy
from saladpipe.selectors.top_k import TopKStrategy
from saladpipe.selectors.uniform import RandomStrategy, StratifiedStrategy

STRATEGIES: dict[str, Callable[[SelectSection], Strategy]] = {
    SaladStrategy.name: lambda cfg: SaladStrategy(gamma=cfg.gamma),
    RandomStrategy.name: lambda cfg: RandomStrategy(),
    StratifiedStrategy.name: lambda cfg: StratifiedStrategy(),
    TopKStrategy.name: lambda cfg: TopKStrategy(),
    DiverseStrategy.name: lambda cfg: DiverseStrategy(candidates=cfg.diverse_candidates),
}


def create_strategy(config: SelectSection) -> Strategy:
    """Build the configured strategy; an unknown name is a config error."""
    try:
        factory = STRATEGIES[config.strategy]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise ConfigError(
            f"config error: select.strategy: unknown strategy {config.strategy!r} (have: {known})"
        ) from None
    return factory(config)

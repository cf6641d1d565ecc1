"""Strategy registry: adding a strategy is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable

from saladpipe.data_schemas.config import SelectSection
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.selectors.base import Strategy
from saladpipe.selectors.salad import SaladStrategy

STRATEGIES: dict[str, Callable[[SelectSection], Strategy]] = {
    SaladStrategy.name: lambda cfg: SaladStrategy(gamma=cfg.gamma),
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

"""What a model call costs, at the prices its model profile declares.

One place computes it: the run's sink puts the cost on each ``llm.completed`` event
(``data.cost_usd``), and the metrics read it from there. Profiles without prices, and the
offline model, cost 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agents.catalog import Catalog
from agents.schema import ModelProfile

__all__ = ["COST_DECIMALS", "Price", "Prices"]

COST_DECIMALS = 6  # USD: a micro-dollar; a sum of rounded costs is within calls × 0.5 µ$ of the exact one


@dataclass(frozen=True)
class Price:
    """USD per token."""

    input_per_token: float = 0.0
    output_per_token: float = 0.0

    @classmethod
    def of(cls, profile: ModelProfile | None) -> Price:
        if profile is None:
            return cls()
        return cls(
            (profile.price_per_1m_input_tokens or 0.0) / 1e6,
            (profile.price_per_1m_output_tokens or 0.0) / 1e6,
        )


FREE = Price()


class Prices:
    """Prices by agent (its profile), and by model string for calls with no agent of ours
    (a hierarchical crew's built-in manager, on ``manager_model``)."""

    def __init__(self, catalog: Catalog) -> None:
        self._by_agent = {name: Price.of(catalog.profile(spec.model)[1]) for name, spec in catalog.agents.items()}
        self._by_model = {str(p.model or name): Price.of(p) for name, p in catalog.profiles.items()}

    def price(self, agent: str | None, model: str | None) -> Price:
        return self._by_agent.get(agent or "") or self._by_model.get(model or "") or FREE

    def cost(self, agent: str | None, model: str | None, usage: Mapping[str, Any]) -> float:
        """USD for a call's ``usage`` (``prompt_tokens``, ``completion_tokens``), rounded to ``COST_DECIMALS``."""
        price = self.price(agent, model)
        prompt, completion = _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens")
        return round(prompt * price.input_per_token + completion * price.output_per_token, COST_DECIMALS)


def _tokens(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and value > 0 else 0

"""The cost model that times the replicas' steps.

The stage uses `prefix_study.cost.CostModel` (the named model on the named
GPU: `model`, `hardware`, `cost` in the config). `EngineClockCost` is the
engine driver's simulated clock (`engine.step_overhead_s` + tokens x
`engine.token_time_s`), a second model with the same interface that the
tests use for hand-computable times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EngineClockCost:
    """step = overhead + (prefilled tokens + decoded tokens) x token time."""

    step_overhead_s: float
    token_time_s: float

    def prefill_time_s(self, prompt_tokens: int, cached_tokens: int) -> float:
        return self.step_overhead_s + (prompt_tokens - cached_tokens) * self.token_time_s

    def decode_step_time_s(self, batch_size: int, context_tokens: int) -> float:
        return self.step_overhead_s + batch_size * self.token_time_s

    def step_time_s(self, prefill: list[tuple[int, int]], decode_context_tokens: list[int]) -> float:
        """prefill: (new tokens, cached context) per request; decode: contexts."""
        tokens = sum(new for new, _ in prefill) + len(decode_context_tokens)
        return self.step_overhead_s + tokens * self.token_time_s


def cost_model(cfg: Any) -> Any:
    from prefix_study.cost import CostModel

    return CostModel.from_config(cfg)

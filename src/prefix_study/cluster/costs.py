"""The cost model that times the replicas' steps.

The stage uses `prefix_study.cost.CostModel` (the named model on the named
GPU: `model`, `hardware`, `cost` in the config). `EngineClockCost` is the
engine driver's simulated clock (`engine.step_overhead_s` + tokens x
`engine.token_time_s`), a second model with the same interface that the
tests use for hand-computable times.

The queues (cluster/queue.py) time steps inside numba: `step_constants(cost)`
gives either model's constants as one array and `step_time_s` (jitted)
times a step from them with the arithmetic of the model's own
`step_time_s`, so both give the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from prefix_study.cost.model import add_prefill_chunk, step_time
from prefix_study.replay.kernels._common import jit

#: STEP_CONSTANTS[0] ("kind") of EngineClockCost (CostModel's is cost.model.ROOFLINE).
CLOCK = 1.0


def clock_step_time(c, prefill_tokens, decode_context_tokens, decode_requests):
    """EngineClockCost's step from its constants (kind, overhead, token time,
    context token time)."""
    return c[1] + (prefill_tokens + decode_requests) * c[2] + decode_context_tokens * c[3]


@dataclass(frozen=True)
class EngineClockCost:
    """step = overhead + (prefilled tokens + decoded tokens) x token time
    [+ decode context tokens x context_token_time_s: 0 in the engine's clock;
    tests set it to check the queue's bulk decode of a context-dependent step]."""

    step_overhead_s: float
    token_time_s: float
    context_token_time_s: float = 0.0

    def prefill_time_s(self, prompt_tokens: int, cached_tokens: int) -> float:
        return self.step_overhead_s + (prompt_tokens - cached_tokens) * self.token_time_s

    def decode_step_time_s(self, batch_size: int, context_tokens: int) -> float:
        return self.step_overhead_s + batch_size * self.token_time_s

    def step_time_s(self, prefill: list[tuple[int, int]], decode_context_tokens: list[int]) -> float:
        """prefill: (new tokens, cached context) per request; decode: contexts."""
        return clock_step_time(self.step_constants(), sum(new for new, _ in prefill),
                               sum(decode_context_tokens), len(decode_context_tokens))

    def step_constants(self) -> tuple[float, ...]:
        return (CLOCK, float(self.step_overhead_s), float(self.token_time_s), float(self.context_token_time_s))


def step_constants(cost: Any) -> np.ndarray:
    """Either cost model's constants for `step_time_s` (float64 array)."""
    return np.asarray(cost.step_constants(), dtype=np.float64)


_prefill_chunk = jit(add_prefill_chunk)
_roofline_step = jit(step_time)
_clock_step = jit(clock_step_time)


@jit
def add_prefill(c, flops, kv_bytes, new, ctx):
    """Add one admitted request's prefill to a step's sums (a no-op for the clock)."""
    if c[0] == CLOCK:
        return flops, kv_bytes
    return _prefill_chunk(c, flops, kv_bytes, new, ctx)


@jit
def step_time_s(c, prefill_flops, prefill_kv_bytes, prefill_tokens, prefill_chunks, decode_context_tokens,
                decode_requests):
    """One step of the model whose constants are `c` (step_constants)."""
    if c[0] == CLOCK:
        return _clock_step(c, prefill_tokens, decode_context_tokens, decode_requests)
    return _roofline_step(c, prefill_flops, prefill_kv_bytes, prefill_tokens, prefill_chunks,
                          decode_context_tokens, decode_requests)


def cost_model(cfg: Any) -> Any:
    from prefix_study.cost import CostModel

    return CostModel.from_config(cfg)

"""Break-even bandwidth: the read bandwidth at which loading a cached prefix
takes as long as recomputing it (what `load_policy=cost` decides per request).

Loading P tokens costs latency + P b / bw (b: KV bytes per token of the named
model); recomputing them costs the sum of their blocks' marginal recompute
times inside a prefill (`replay/simulate.py:recompute_cost`), the same sum the
tier replay's `cost` load policy weighs. (It is not one prefill of P tokens
timed alone: the cost model counts the LM head once per prefill call, so the
blocks' marginal costs do not telescope into it exactly.) So a tier slower
than `break_even_bytes_s` loses to recomputation for that prefix.
"""

from __future__ import annotations

import math

import numpy as np

from prefix_study.cost.model import CostModel
from prefix_study.replay.simulate import recompute_cost


def recompute_s(cost_model: CostModel, prefix_tokens: int, block_size: int) -> float:
    """Compute time of recomputing the first `prefix_tokens` tokens (whole
    blocks of `block_size`) inside a prefill, as the tier replay prices it."""
    blocks = int(prefix_tokens) // int(block_size)
    return float(recompute_cost(np.arange(blocks), int(block_size), cost_model).sum())


def break_even_bytes_s(cost_model: CostModel, prefix_tokens: int, block_size: int,
                       latency_s: float = 0.0) -> float:
    """Read bandwidth (bytes/s) at which loading the prefix ties with recomputing
    it; inf when the latency alone exceeds the recompute time."""
    spare = recompute_s(cost_model, prefix_tokens, block_size) - latency_s
    if spare <= 0:
        return math.inf
    return prefix_tokens * cost_model.model.kv_bytes_per_token() / spare

"""Break-even bandwidth: the read bandwidth at which loading a cached prefix
takes as long as recomputing it (what `load_policy=cost` decides per request).

Loading P tokens costs latency + P b / bw (b: KV bytes per token of the named
model); recomputing them costs the compute time of their prefill FLOPs with
nothing before them, which is also the sum of the blocks' marginal recompute
times the tier replay uses (the causal attention pairs telescope). So a tier
slower than `break_even_bytes_s` loses to recomputation for that prefix.
"""

from __future__ import annotations

import math

from prefix_study.cost.model import CostModel


def recompute_s(cost_model: CostModel, prefix_tokens: int) -> float:
    """Compute time to prefill `prefix_tokens` tokens from scratch (no weight-read term)."""
    return float(cost_model.compute_time_s(cost_model.prefill_flops(prefix_tokens, 0)))


def break_even_bytes_s(cost_model: CostModel, prefix_tokens: int, latency_s: float = 0.0) -> float:
    """Read bandwidth (bytes/s) at which loading the prefix ties with recomputing
    it; inf when the latency alone exceeds the recompute time."""
    spare = recompute_s(cost_model, prefix_tokens) - latency_s
    if spare <= 0:
        return math.inf
    return prefix_tokens * cost_model.model.kv_bytes_per_token() / spare

"""Run one policy over one encoded trace: the single entry to the kernels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prefix_study.config.schema import SEMANTICS
from prefix_study.replay.policies import get_policy
from prefix_study.replay.trace import BlockTrace

_NO_NEXT_USE = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class ReplayResult:
    policy: str
    semantics: str
    capacity_blocks: int
    accesses: int
    hits: int

    @property
    def hit_rate(self) -> float:
        return self.hits / self.accesses if self.accesses else 0.0


def recompute_cost(position: np.ndarray) -> np.ndarray:
    """Recompute cost of a block at each position, in units of the first
    block's cost. Stand-in until a cost model lands: attention over all
    earlier tokens makes a block's prefill cost grow linearly with its
    position; the attention-dominated limit is `1 + position`. Only ratios
    matter to the policies that use it (cost_lru)."""
    return 1.0 + position.astype(np.float64)


def replay_hit_mask(trace: BlockTrace, policy: str, capacity: int, semantics: str) -> np.ndarray:
    """Per-access hit flags of `policy` with `capacity` blocks under `semantics`.

    The one place that calls kernels (see policies.py for the convention);
    policies registered with `needs_context` also get position, category
    and recompute cost per access."""
    if semantics not in SEMANTICS:
        raise ValueError(f"semantics={semantics!r}: allowed {list(SEMANTICS)}")
    if capacity < 0:
        raise ValueError(f"capacity={capacity}: must be >= 0")
    p = get_policy(policy)
    prefix = semantics == "prefix"
    kernel = p.prefix_kernel if (prefix and p.prefix_kernel is not None) else p.kernel
    next_use = trace.next_use if p.needs_next_use else _NO_NEXT_USE
    args = (trace.ids, trace.flags, np.int64(capacity), np.int64(trace.num_ids), prefix, next_use)
    if p.needs_context:
        category, num_categories = trace.categories()
        args += (trace.positions, category, np.int64(num_categories), recompute_cost(trace.positions))
    return kernel(*args)


def replay(trace: BlockTrace, policy: str, capacity: int, semantics: str) -> ReplayResult:
    """Hit count of one (policy, capacity, semantics) replay."""
    hits = replay_hit_mask(trace, policy, capacity, semantics)
    counted = trace.looked_up
    return ReplayResult(
        policy, semantics, int(capacity), int(np.count_nonzero(counted)),
        int(np.count_nonzero(hits & counted)),
    )


def infinite_hit_mask(trace: BlockTrace) -> np.ndarray:
    """Accesses whose block was accessed before (by any row)."""
    first = np.zeros(trace.accesses, dtype=np.bool_)
    _, idx = np.unique(trace.ids, return_index=True)
    first[idx] = True
    return ~first


def infinite_cache_hits(trace: BlockTrace) -> int:
    """Hits of an infinite cache: looked-up accesses whose block was accessed
    before. The upper bound of every policy under both semantics (for a
    chained trace)."""
    return int(np.count_nonzero(infinite_hit_mask(trace) & trace.looked_up))

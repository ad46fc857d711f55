"""Run one policy over one encoded trace: the single entry to the policies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from prefix_study.config.schema import SEMANTICS
from prefix_study.replay.policies import get_policy
from prefix_study.replay.trace import BlockTrace

if TYPE_CHECKING:
    from prefix_study.cost.model import CostModel

_NO_NEXT_USE = np.zeros(0, dtype=np.int64)
_NO_COST = np.zeros(0, dtype=np.float64)
_NO_CATEGORY = np.zeros(0, dtype=np.int32)


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


def recompute_cost(position: np.ndarray, block_size: int | None = None,
                   cost_model: "CostModel | None" = None) -> np.ndarray:
    """Recompute cost of a block at each position (block index in its request).

    With a cost model and block size (the replay, mixed, savings and cluster stages:
    the config's model, hardware and cost sections): the compute time in
    seconds of the block's tokens after the p blocks before it,
    `cost_model.compute_time_s(prefill_flops((p+1)*bs, p*bs))`: linear layers
    plus attention over all earlier tokens (cost/model.py). This is the
    block's marginal cost inside a prefill, where the weight read is shared
    by the whole batch; timing the block as a prefill of its own
    (`prefill_time_s`) would be weight-read bound and almost flat in
    position.

    Without a cost model (callers that configure none: tests, benches):
    a position-linear stand-in in units
    of the first block's cost, `1 + position`, the attention-dominated
    limit. Only ratios matter to the policies that use it (cost_lru)."""
    if cost_model is None:
        return 1.0 + position.astype(np.float64)
    if block_size is None or block_size < 1:
        raise ValueError(f"recompute_cost: block_size={block_size} must be >= 1 with a cost model")
    p = position.astype(np.float64)
    flops = cost_model.prefill_flops((p + 1.0) * block_size, p * block_size)
    return np.asarray(cost_model.compute_time_s(flops), dtype=np.float64)


def replay_hit_mask(trace: BlockTrace, policy: str, capacity: int, semantics: str,
                    cost_model: "CostModel | None" = None, block_size: int | None = None) -> np.ndarray:
    """Per-access hit flags of `policy` with `capacity` blocks under `semantics`.

    The one place that replays a whole trace (see policies.py for the
    convention): an online policy's `serve` once per request, in numba; an
    offline one's kernel. Policies registered with `needs_context` also get
    the category and recompute cost per access (`recompute_cost`: from
    `cost_model` at `block_size` tokens per block when given, else the
    stand-in)."""
    if semantics not in SEMANTICS:
        raise ValueError(f"semantics={semantics!r}: allowed {list(SEMANTICS)}")
    if capacity < 0:
        raise ValueError(f"capacity={capacity}: must be >= 0")
    p = get_policy(policy)
    prefix = semantics == "prefix"
    if not p.online:
        next_use = trace.next_use if p.needs_next_use else _NO_NEXT_USE
        return p.kernel(trace.ids, trace.flags, np.int64(capacity), np.int64(trace.num_ids), prefix, next_use)
    cost, category, num_categories = replay_context(trace, p.needs_context, cost_model, block_size)
    machine = p.state_machine(semantics)
    state = machine.init(np.int64(capacity), np.int64(trace.num_ids), np.int64(trace.accesses),
                         np.int64(num_categories))
    hits = np.zeros(trace.accesses, dtype=np.bool_)
    return machine.replay(state, trace.ids, trace.flags, cost, category, prefix, hits)


def replay_context(trace: BlockTrace, needs_context: bool, cost_model: "CostModel | None" = None,
                   block_size: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(cost, category, num_categories) per access for `serve`: empty arrays
    and one category for a policy that reads no context."""
    if not needs_context:
        return _NO_COST, _NO_CATEGORY, 1
    category, num_categories = trace.categories()
    return (recompute_cost(trace.positions, block_size, cost_model),
            np.ascontiguousarray(category, dtype=np.int32), int(num_categories))


def replay(trace: BlockTrace, policy: str, capacity: int, semantics: str,
           cost_model: "CostModel | None" = None, block_size: int | None = None) -> ReplayResult:
    """Hit count of one (policy, capacity, semantics) replay (cost_model and
    block_size: see replay_hit_mask)."""
    hits = replay_hit_mask(trace, policy, capacity, semantics, cost_model, block_size)
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

"""Replay an encoded trace through GPU memory and the tiers below it.

`tier_replay` is the library's entry: per request, the blocks each tier
served, the blocks recomputed, the bytes read from each tier and written to
it, the bytes on each link and the load time (TTFT's transfer part); the loop
is kernel.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from prefix_study.config.schema import MAX_LOWER_TIERS
from prefix_study.replay.kernels._common import REQUEST_START
from prefix_study.replay.policies import get_policy
from prefix_study.replay.simulate import recompute_cost, replay_context
from prefix_study.tiers.kernel import LOAD_CODES, UNUSED, WRITE_CODES, scratch, specialise, tier_policy
from prefix_study.tiers.spec import Hierarchy

if TYPE_CHECKING:
    from prefix_study.cost.model import CostModel
    from prefix_study.replay.trace import BlockTrace


@dataclass(frozen=True)
class TierReplay:
    """Per-request outcome of a tier replay (tier 0 is GPU memory).

    served_blocks[r, t]: looked-up blocks of request r that tier t served
    (GPU memory: its prefix hits); recomputed_blocks[r]: looked-up blocks
    recomputed; declined_blocks[r]: found in a lower tier but not loaded
    (load policy); read_bytes[r, t]: bytes loaded from tier t;
    write_bytes[r, t]: bytes written to tier t; load_s[r]: transfer time of
    the loads (latency + bytes / read bandwidth per tier, one after another);
    link_bytes[link][r]: bytes read or written over each link.
    gpu_hits: per-access prefix hits of GPU memory (today's replay's)."""

    hierarchy: Hierarchy
    gpu_policy: str
    gpu_capacity_blocks: int
    gpu_hits: np.ndarray
    served_blocks: np.ndarray
    recomputed_blocks: np.ndarray
    declined_blocks: np.ndarray
    read_bytes: np.ndarray
    write_bytes: np.ndarray
    load_s: np.ndarray
    link_bytes: dict[str, np.ndarray]

    @property
    def tier_names(self) -> tuple[str, ...]:
        return self.hierarchy.tier_names

    def served_tokens(self) -> dict[str, int]:
        """Tokens each tier served, over the whole trace."""
        totals = self.served_blocks.sum(axis=0) * self.hierarchy.block_size
        return {name: int(totals[t]) for t, name in enumerate(self.tier_names)}

    def recomputed_tokens(self) -> int:
        return int(self.recomputed_blocks.sum()) * self.hierarchy.block_size


def _capacity(blocks: Optional[int], num_ids: int, what: str) -> int:
    if blocks is None:
        raise ValueError(f"{what}: no capacity (give one, or set it in the tiers config)")
    return num_ids if blocks < 0 else int(blocks)


def lower_capacities(tiers: Hierarchy, num_ids: int, scale: Sequence[int] | None = None) -> list[int]:
    """Each lower tier's capacity in its chunks (unbounded: every id), times
    `scale[i]` (a shared pool of n replicas' tiers)."""
    caps = [_capacity(t.capacity_blocks, num_ids, t.name) // t.chunk_blocks for t in tiers.lower]
    return caps if scale is None else [c * int(k) for c, k in zip(caps, scale)]


def lower_states(tiers: Hierarchy, caps: Sequence[int], trace: "BlockTrace", num_categories: int) -> list:
    """Empty states of the lower tiers (block semantics), the unused slots
    filled with capacity-0 UNUSED states."""
    n, acc, cats = np.int64(trace.num_ids), np.int64(trace.accesses), np.int64(num_categories)
    states = [tier_policy(t.policy).state_machine("block").init(np.int64(c), n, acc, cats)
              for t, c in zip(tiers.lower, caps)]
    unused = get_policy(UNUSED).state_machine("block")
    while len(states) < MAX_LOWER_TIERS:
        states.append(unused.init(np.int64(0), n, acc, cats))
    return states


def kernel_params(tiers: Hierarchy, caps: Sequence[int]) -> tuple:
    """The per-tier parameters of the tier loop (kernel.py `par`)."""
    lower = tiers.lower

    def per_tier(values, dtype, fill):
        out = np.full(MAX_LOWER_TIERS + 1, fill, dtype=dtype)
        out[1:1 + len(lower)] = values
        return out

    return (per_tier(list(caps), np.int64, 0), per_tier([t.chunk_blocks for t in lower], np.int64, 1),
            per_tier([WRITE_CODES[t.write_policy] for t in lower], np.int64, 0),
            per_tier([t.write_hits for t in lower], np.int64, 1),
            per_tier([t.min_load_tokens for t in lower], np.int64, 0),
            per_tier([t.read_bytes_s for t in lower], np.float64, 1.0),
            per_tier([t.latency_s for t in lower], np.float64, 0.0),
            float(tiers.block_bytes), np.int64(tiers.block_size), np.int64(LOAD_CODES[tiers.load_policy]),
            np.int64(len(lower)))


def new_outputs(num_requests: int, num_accesses: int) -> tuple:
    """The tier loop's output arrays (kernel.py `out`)."""
    T = MAX_LOWER_TIERS + 1
    return (np.zeros(num_accesses, dtype=np.bool_), np.zeros((num_requests, T), dtype=np.int64),
            np.zeros(num_requests, dtype=np.int64), np.zeros(num_requests, dtype=np.int64),
            np.zeros((num_requests, T), dtype=np.float64), np.zeros((num_requests, T), dtype=np.int64),
            np.zeros(num_requests, dtype=np.float64))


def recompute_times(trace: "BlockTrace", tiers: Hierarchy, cost_model: "CostModel | None") -> np.ndarray:
    """Per access, its block's marginal recompute time (load_policy=cost); empty without a cost model."""
    if tiers.load_policy == "cost" and cost_model is None:
        raise ValueError("tier_replay: load_policy=cost needs a cost model (recompute times)")
    return recompute_cost(trace.positions, tiers.block_size, cost_model) if cost_model is not None \
        else np.zeros(0, dtype=np.float64)


def tier_result(tiers: Hierarchy, gpu_policy: str, gpu_capacity: int, out: tuple) -> TierReplay:
    """A TierReplay from the tier loop's outputs (bytes written and per link)."""
    hits, served, recomputed, declined, read_bytes, written, load_s = out
    lower = tiers.lower
    k = 1 + len(lower)
    chunk = np.array([1, *(t.chunk_blocks for t in lower)], dtype=np.int64)
    write_bytes = written[:, :k] * (chunk * tiers.block_bytes)[None, :].astype(np.float64)
    write_bytes[:, 0] = 0.0
    links: dict[str, np.ndarray] = {}
    for t, spec in enumerate(lower, start=1):
        for link in spec.links:
            links.setdefault(link, np.zeros(served.shape[0], dtype=np.float64))
            links[link] += read_bytes[:, t] + write_bytes[:, t]
    return TierReplay(tiers, gpu_policy, gpu_capacity, hits, served[:, :k], recomputed, declined,
                      read_bytes[:, :k], write_bytes, load_s, links)


def tier_replay(trace: "BlockTrace", tiers: Hierarchy, gpu_policy: Optional[str] = None,
                gpu_capacity_blocks: Optional[int] = None,
                cost_model: "CostModel | None" = None) -> TierReplay:
    """Replay `trace` (at tiers.block_size tokens per block) through GPU memory
    (`gpu_policy` with `gpu_capacity_blocks`, or the hierarchy's own) and the
    tiers below. load_policy=cost needs `cost_model` (recompute times); it
    also gives policies that read context their recompute costs."""
    gpu_policy = gpu_policy or tiers.gpu_policy
    if gpu_policy is None:
        raise ValueError("tier_replay: no GPU policy (give one, or set tiers.tiers[0].policy)")
    gpu_capacity = _capacity(gpu_capacity_blocks if gpu_capacity_blocks is not None else tiers.gpu_capacity_blocks,
                             trace.num_ids, "GPU memory")
    recompute_s = recompute_times(trace, tiers, cost_model)
    policies = [get_policy(gpu_policy), *(tier_policy(t.policy) for t in tiers.lower)]
    needs_context = any(p.needs_context for p in policies)
    cost, category, num_categories = replay_context(trace, needs_context, cost_model, tiers.block_size)
    st0 = policies[0].state_machine("prefix").init(np.int64(gpu_capacity), np.int64(trace.num_ids),
                                                    np.int64(trace.accesses), np.int64(num_categories))
    caps = lower_capacities(tiers, trace.num_ids)
    st1, st2 = lower_states(tiers, caps, trace, num_categories)
    starts = np.append(np.flatnonzero(trace.flags & REQUEST_START), trace.accesses).astype(np.int64)
    nreq = starts.shape[0] - 1
    longest = int(np.diff(starts).max()) if nreq else 1
    work = scratch(np.int64(longest), np.int64(MAX_LOWER_TIERS + 1), np.int64(trace.num_ids),
                   cost.shape[0] > 0, category.shape[0] > 0)
    out = new_outputs(nreq, trace.accesses)
    loops = specialise(gpu_policy, tuple(t.policy for t in tiers.lower))
    loops.loop(st0, st1, st2, trace.ids, trace.flags, cost, category, starts, recompute_s,
               kernel_params(tiers, caps), work, out)
    return tier_result(tiers, gpu_policy, gpu_capacity, out)

"""Replica caches with KV tiers below GPU memory (the `tiers` config).

Each replica's GPU memory is what `ReplicaCaches` holds (the cluster policy's
prefix state machine); below it each replica takes the same tiers. A tier
whose `scope` is `per_replica` is one state per replica; a `shared` tier is
one pool every replica reads and writes (Mooncake Store), of the replicas'
capacities together: a tier's `capacity` is what each replica contributes,
so a shared pool and per-replica tiers hold the same total.

A request is served by the tier loop of the single-instance tier replay
(tiers/kernel.py `_tier_request`, one request per call through
`serve_and_look`, which then looks up the next request in every replica's
GPU memory as ReplicaCaches does), so
one replica reproduces `tier_replay` exactly and, with no tier below GPU
memory holding anything, today's replica caches. A precise router sees GPU
memory only (what a replica's KV events report).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from numba.typed import List

from prefix_study.config.schema import MAX_LOWER_TIERS
from prefix_study.replay.kernels._common import REQUEST_START
from prefix_study.replay.policies import get_policy, unsupported_reason
from prefix_study.replay.simulate import replay_context
from prefix_study.replay.trace import BlockTrace
from prefix_study.tiers.kernel import scratch, specialise, tier_policy
from prefix_study.tiers.replay import (kernel_params, lower_capacities, lower_states, new_outputs,
                                       recompute_times)
from prefix_study.tiers.spec import Hierarchy


def with_scope(tiers: Hierarchy, scope: str) -> Hierarchy:
    """Every tier below GPU memory set to `scope` (the cluster's comparison)."""
    return replace(tiers, lower=tuple(replace(t, scope=scope) for t in tiers.lower))


class TieredReplicaCaches:
    """`num_replicas` GPU memories of `capacity` blocks under `policy` (prefix
    semantics, as ReplicaCaches) and the tiers below them (`tiers`, resolved
    at the trace's block size). `serve_and_look` is ReplicaCaches' with the
    tiers: its hits are the blocks served from any tier; per request,
    `served` holds the blocks each tier served and `load_s` the load time
    (tier_replay's units)."""

    def __init__(self, trace: BlockTrace, policy: str, num_replicas: int, capacity: int,
                 max_request_blocks: int, tiers: Hierarchy, cost_model: Any = None, block_size: int | None = None):
        p = get_policy(policy)
        if not p.online:
            raise ValueError(f"cluster.policy={policy!r}: {unsupported_reason(policy)}")
        n = int(num_replicas)
        self.tiers = tiers
        self.machine = m = p.state_machine("prefix")
        self.ids, self.flags = trace.ids, trace.flags
        needs_context = p.needs_context or any(tier_policy(t.policy).needs_context for t in tiers.lower)
        self.cost, self.category, num_categories = replay_context(trace, needs_context, cost_model, block_size)
        self.recompute_s = recompute_times(trace, tiers, cost_model)
        self.states = m.init_states(n, np.int64(capacity), np.int64(trace.num_ids), np.int64(trace.accesses),
                                    np.int64(num_categories))
        caps = lower_capacities(tiers, trace.num_ids)
        shared = [t.scope == "shared" for t in tiers.lower] + [False] * (MAX_LOWER_TIERS - len(tiers.lower))
        pooled = lower_capacities(tiers, trace.num_ids, [n if s else 1 for s in shared])
        per_replica = [lower_states(tiers, caps, trace, num_categories) for _ in range(n)]
        pool = lower_states(tiers, pooled, trace, num_categories)
        # states1, states2: one state per replica, or (shared) one pool at index 0.
        self.lower = [List([pool[k]] if shared[k] else [per_replica[r][k] for r in range(n)])
                      for k in range(MAX_LOWER_TIERS)]
        self.shared = shared
        self.par = kernel_params(tiers, caps)
        # A shared pool's capacity is the replicas' together; the loop reads
        # cap[t] only to skip tiers of capacity 0, which pooling keeps at 0.
        self.work = [scratch(np.int64(max(1, max_request_blocks)), np.int64(MAX_LOWER_TIERS + 1),
                             np.int64(trace.num_ids), self.cost.shape[0] > 0, self.category.shape[0] > 0)
                     for _ in range(n)]
        nreq = int(np.count_nonzero(trace.flags & REQUEST_START))
        self.out = new_outputs(nreq, trace.accesses)
        self._serve_and_look = specialise(policy, tuple(t.policy for t in tiers.lower)).serve_and_look
        self._request = 0
        self.hits = self.out[0]

    @property
    def served(self) -> np.ndarray:
        return self.out[1][:, :1 + len(self.tiers.lower)]

    @property
    def load_s(self) -> np.ndarray:
        return self.out[6]

    def serve_and_look(self, replica: int, start: int, end: int, next_start: int, next_end: int,
                       seen: np.ndarray, sizes: np.ndarray) -> int:
        """Replica `replica` (none if < 0) serves the next request (accesses
        start..end-1) through its tiers and returns the blocks served from GPU
        memory or loaded from a tier below; then per replica `seen` gets the
        leading looked-up blocks of the request at next_start..next_end-1 its
        GPU memory holds, and `sizes` the blocks it holds (ReplicaCaches')."""
        r = self._request
        if replica >= 0:
            self._request += 1
        i1 = 0 if self.shared[0] or replica < 0 else replica
        i2 = 0 if self.shared[1] or replica < 0 else replica
        return self._serve_and_look(self.states, self.lower[0], self.lower[1], replica, i1, i2, self.ids,
                                    self.flags, self.cost, self.category, r, start, end, self.recompute_s,
                                    self.par, self.work[max(replica, 0)], self.out, next_start, next_end, seen,
                                    sizes)

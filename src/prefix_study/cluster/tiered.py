"""Replica caches with KV tiers below GPU memory (the `tiers` config).

Each replica's GPU memory is what `ReplicaCaches` holds (the cluster policy's
prefix state machine); below it each replica takes the same tiers. A tier
whose `scope` is `per_replica` is one state per replica; a `shared` tier is
one pool every replica reads and writes (Mooncake Store), of the replicas'
capacities together: a tier's `capacity` is what each replica contributes,
so a shared pool and per-replica tiers hold the same total.

A request is served by the tier loop of the single-instance tier replay
(tiers/kernel.py `_tier_request`, one request per call through `serve_at`), so
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
from prefix_study.replay.policies import get_policy, unsupported_reason
from prefix_study.replay.simulate import replay_context
from prefix_study.replay.trace import BlockTrace
from prefix_study.tiers.kernel import scratch, specialise
from prefix_study.tiers.replay import (kernel_params, lower_capacities, lower_states, new_outputs,
                                       recompute_times)
from prefix_study.tiers.spec import Hierarchy


def with_scope(tiers: Hierarchy, scope: str) -> Hierarchy:
    """Every tier below GPU memory set to `scope` (the cluster's comparison)."""
    return replace(tiers, lower=tuple(replace(t, scope=scope) for t in tiers.lower))


class TieredReplicaCaches:
    """`num_replicas` GPU memories of `capacity` blocks under `policy` (prefix
    semantics, as ReplicaCaches) and the tiers below them (`tiers`, resolved
    at the trace's block size). `serve` returns the blocks served from any
    tier; per request, `served` holds the blocks each tier served and
    `load_s` the load time (tier_replay's units)."""

    def __init__(self, trace: BlockTrace, policy: str, num_replicas: int, capacity: int,
                 max_request_blocks: int, tiers: Hierarchy, cost_model: Any = None, block_size: int | None = None):
        p = get_policy(policy)
        if not p.online:
            raise ValueError(f"cluster.policy={policy!r}: {unsupported_reason(policy)}")
        n = int(num_replicas)
        self.tiers = tiers
        self.machine = m = p.state_machine("prefix")
        self.ids, self.flags = trace.ids, trace.flags
        needs_context = p.needs_context or any(get_policy(t.policy).needs_context for t in tiers.lower)
        self.cost, self.category, num_categories = replay_context(trace, needs_context, cost_model, block_size)
        self.recompute_s = recompute_times(trace, tiers, cost_model)
        args = (np.int64(trace.num_ids), np.int64(trace.accesses), np.int64(num_categories))
        self.states = List([m.init(np.int64(capacity), *args) for _ in range(n)])
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
        nreq = int(np.count_nonzero(trace.flags & 1))
        self.out = new_outputs(nreq, trace.accesses)
        self._serve_at = specialise(policy, tuple(t.policy for t in tiers.lower)).serve_at
        self._request = 0
        self._overlaps = np.zeros(n, dtype=np.int64)
        self.hits = self.out[0]

    @property
    def served(self) -> np.ndarray:
        return self.out[1][:, :1 + len(self.tiers.lower)]

    @property
    def load_s(self) -> np.ndarray:
        return self.out[6]

    def overlaps(self, start: int, end: int) -> list[int]:
        """Per replica, the leading looked-up blocks its GPU memory holds."""
        return self.machine.overlaps(self.states, self.ids, self.flags, start, end, self._overlaps).tolist()

    def serve(self, replica: int, start: int, end: int) -> int:
        """Replica `replica` serves the next request (accesses start..end-1);
        returns the blocks served from GPU memory or loaded from a tier below."""
        r = self._request
        self._request += 1
        i1 = 0 if self.shared[0] else replica
        i2 = 0 if self.shared[1] else replica
        self._serve_at(self.states, self.lower[0], self.lower[1], np.int64(replica), np.int64(i1), np.int64(i2),
                       self.ids, self.flags, self.cost, self.category, np.int64(r), np.int64(start), np.int64(end),
                       self.recompute_s, self.par, self.work[replica], self.out)
        return int(self.out[1][r].sum())

    def sizes(self) -> list[int]:
        """Blocks each replica's GPU memory holds (SGLang's router: its tree size)."""
        from prefix_study.replay.kernels._serve import occupancy

        return occupancy(self.states, self._overlaps).tolist()

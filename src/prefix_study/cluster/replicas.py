"""The replicas' prefix caches: one state of the cluster policy per replica.

A replica's cache answers two questions between requests: how many leading
blocks of a request it holds (what a precise router sees through KV events:
`overlaps`) and what happens when it serves one (hits, then insertions and
evictions: `serve`). Both are the policy's own numba functions
(replay/policies.py): a replica holds one state and calls the same `serve`
that the single-instance replay calls, so a cluster of one replica
reproduces the `prefix` replay exactly (tests/test_cluster_caches.py). The
states of all replicas sit in one numba typed List, so serving a request and
looking up the next one in every replica is one call.

Every online policy can run on a replica; an offline one (`belady`) cannot:
it needs the replica's future accesses, which depend on routing decisions
not yet made.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prefix_study.replay.policies import get_policy, online_policy_names, unsupported_reason
from prefix_study.replay.simulate import replay_context
from prefix_study.replay.trace import BlockTrace


def replica_policy_names() -> list[str]:
    """Policies a replica can run (the values `cluster.policy` accepts)."""
    return online_policy_names()


class ReplicaCaches:
    """`num_replicas` empty caches of `capacity` blocks running `policy`
    under `prefix` semantics over the accesses of `trace` (the cluster's
    requests, in arrival order; request i is accesses start[i]..end[i]-1).
    cost_model / block_size price recomputes (cost_lru) as in the replay
    stage (replay/simulate.py:recompute_cost; None: its stand-in)."""

    def __init__(self, trace: BlockTrace, policy: str, num_replicas: int, capacity: int,
                 max_request_blocks: int, cost_model: Any = None, block_size: int | None = None):
        p = get_policy(policy)
        if not p.online:
            raise ValueError(f"cluster.policy={policy!r}: {unsupported_reason(policy)}")
        self.machine = m = p.state_machine("prefix")
        self.ids, self.flags = trace.ids, trace.flags
        self.cost, self.category, num_categories = replay_context(trace, p.needs_context, cost_model, block_size)
        self.states = m.init_states(int(num_replicas), np.int64(capacity), np.int64(trace.num_ids),
                                    np.int64(trace.accesses), np.int64(num_categories))
        self.hits = np.zeros(trace.accesses, dtype=np.bool_)
        self.evicted = np.empty(2 * max(1, max_request_blocks) + 1, dtype=np.int32)
        self.evictions = 0
        self._seen = np.zeros(int(num_replicas), dtype=np.int64)  # scratch of look and serve

    def serve_and_look(self, replica: int, start: int, end: int, next_start: int, next_end: int,
                       seen: np.ndarray, sizes: np.ndarray) -> int:
        """Replica `replica` (none if < 0) serves the request at accesses
        start..end-1 and returns its prefix hits (the blocks it evicted are
        self.evicted[:self.evictions], for a lower tier); then per replica
        `seen` gets the leading looked-up blocks of the request at
        next_start..next_end-1 it caches, and `sizes` the blocks it caches
        (SGLang's router reads this as its tree size). The simulation's one
        cache call per request."""
        hits, self.evictions = self.machine.serve_and_look(
            self.states, replica, self.ids, self.flags, self.cost, self.category, start, end, True, self.hits,
            self.evicted, next_start, next_end, seen, sizes)
        return hits

    def look(self, start: int, end: int) -> tuple[list[int], list[int]]:
        """serve_and_look's `seen` and `sizes` without serving."""
        seen, sizes = np.zeros_like(self._seen), np.zeros_like(self._seen)
        self.serve_and_look(-1, 0, 0, start, end, seen, sizes)
        return seen.tolist(), sizes.tolist()

    def serve(self, replica: int, start: int, end: int) -> tuple[int, int]:
        """serve_and_look's hits, and the number of evictions, without looking."""
        hits = self.serve_and_look(replica, start, end, 0, 0, self._seen, self._seen)
        return hits, self.evictions

    def holds(self, replica: int, blocks: list[int]) -> list[int]:
        """The blocks among `blocks` that replica `replica` caches now."""
        ids = np.asarray(blocks, dtype=np.int32)
        mask = self.machine.holds(self.states, replica, ids, np.zeros(ids.shape[0], dtype=np.bool_))
        return ids[mask].tolist()

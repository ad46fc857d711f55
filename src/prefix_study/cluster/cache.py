"""Incremental replica caches: one request at a time, `prefix` semantics.

A replica's cache must answer two questions between requests: how many
leading blocks of a request it holds (what a precise router sees through KV
events) and what happens when it serves one (hits, then insertions and
evictions). The replay kernels answer the second for a whole trace at once;
these classes do the same request by request, and are tested to equal the
kernels hit for hit on any trace (tests/test_cluster.py), so a cluster of one
replica reproduces the single-instance `prefix` replay exactly.

Supported policy (`cluster.policy`): `lru` (vLLM's free queue, as
`replay/kernels/lru.py`'s `lru_vllm_free_queue`). Other registered policies
(among them `fifo`, whose prefix kernel models vLLM's physical blocks with
duplicate copies) have no incremental version yet and are rejected by config
validation, naming the key.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence


class ReplicaCache:
    """Interface: `overlap` (read-only) and `serve` (one request)."""

    capacity: int
    cached: set[int] | dict[int, None]

    def overlap(self, blocks: Sequence[int], n_lookup: int) -> int:
        """Leading looked-up blocks of a request that are cached now."""
        cached = self.cached
        k = 0
        while k < n_lookup and blocks[k] in cached:
            k += 1
        return k

    def serve(self, blocks: Sequence[int], n_lookup: int, partial_tail: bool) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.cached)


class VllmFreeQueueCache(ReplicaCache):
    """vLLM v1's BlockPool under one request at a time (kernels/lru.py).

    Cached blocks no request holds sit in a free queue (head evicted first).
    Serving a request touches its cached blocks (they leave the queue),
    allocates its missed blocks from the queue head, then (when the request
    finishes) a partial tail block it held evicts one more queued block if
    the pool was full, and its blocks return to the queue tail first, tail
    block first. The kernel does those last two steps at the next request's
    start; nothing happens in between, so doing them at the end is the same.
    """

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.cached: set[int] = set()
        self.queue: OrderedDict[int, None] = OrderedDict()

    def serve(self, blocks: Sequence[int], n_lookup: int, partial_tail: bool) -> int:
        cap = self.capacity
        if cap <= 0:
            return 0
        cached = self.cached
        queue = self.queue
        held: list[int] = []
        hits = 0
        run = True
        for pos, x in enumerate(blocks):
            if x in cached:
                if run and pos < n_lookup:
                    hits += 1
                else:
                    run = False
                if x in queue:  # touch: leave the free queue (pinned)
                    del queue[x]
                    held.append(x)
            else:
                run = False
                if len(cached) >= cap:
                    if not queue:
                        continue  # every block is held by this request
                    v, _ = queue.popitem(last=False)
                    cached.discard(v)
                cached.add(x)
                held.append(x)
        if partial_tail and len(cached) >= cap and queue:
            v, _ = queue.popitem(last=False)
            cached.discard(v)
        for b in reversed(held):
            queue[b] = None
        return hits


#: `cluster.policy` -> incremental cache class.
CLUSTER_CACHES: dict[str, Callable[[int], ReplicaCache]] = {
    "lru": VllmFreeQueueCache,
}


def make_cache(policy: str, capacity: int) -> ReplicaCache:
    try:
        return CLUSTER_CACHES[policy](capacity)
    except KeyError:
        raise KeyError(f"cluster.policy={policy!r}: the cluster supports {sorted(CLUSTER_CACHES)}") from None

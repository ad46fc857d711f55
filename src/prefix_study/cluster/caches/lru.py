"""`lru`: vLLM's free queue (kernels/lru.py `lru_vllm_free_queue`), and
`lru_plain`: LRU refreshed in access order (kernels/lru.py `lru`)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from prefix_study.cluster.caches import register_cache
from prefix_study.cluster.caches._base import BlockStateCache, CacheContext, NO_CONTEXT, ReplicaCache


@register_cache("lru")
class VllmFreeQueueCache(ReplicaCache):
    """vLLM v1's BlockPool under one request at a time.

    Cached blocks no request holds sit in a free queue (head evicted first).
    Serving a request touches its cached blocks (they leave the queue),
    allocates its missed blocks from the queue head, then (when the request
    finishes) a partial tail block it held evicts one more queued block if
    the pool was full, and its blocks return to the queue tail first, tail
    block first. The kernel does those last two steps at the next request's
    start; nothing happens in between, so doing them at the end is the same.
    """

    def __init__(self, capacity: int, context: CacheContext = NO_CONTEXT):
        super().__init__(capacity, context)
        self.queue: OrderedDict[int, None] = OrderedDict()

    def serve(self, blocks: Sequence[int], n_lookup: int, partial_tail: bool, category: int = 0) -> int:
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
                    del cached[v]
                cached[x] = None
                held.append(x)
        if partial_tail and len(cached) >= cap and queue:
            v, _ = queue.popitem(last=False)
            del cached[v]
        for b in reversed(held):
            queue[b] = None
        return hits


@register_cache("lru_plain")
class PlainLruCache(BlockStateCache):
    """Textbook LRU, every access refreshed in order, nothing pinned.
    `cached` is ordered least recent first."""

    cached: OrderedDict[int, None]

    def __init__(self, capacity: int, context: CacheContext = NO_CONTEXT):
        super().__init__(capacity, context)
        self.cached = OrderedDict()

    def access(self, x: int, position: int) -> None:
        cached = self.cached
        if x in cached:
            cached.move_to_end(x)
            return
        if len(cached) == self.capacity:
            cached.popitem(last=False)
        cached[x] = None

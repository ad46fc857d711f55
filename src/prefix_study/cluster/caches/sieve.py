"""`sieve`: SIEVE (kernels/sieve.py), block-semantics state."""

from __future__ import annotations

from prefix_study.cluster.caches import register_cache
from prefix_study.cluster.caches._base import BlockStateCache, CacheContext, NO_CONTEXT


@register_cache("sieve")
class SieveCache(BlockStateCache):
    """A queue linked newer/older (-1: none) with a hand; `cached`: id ->
    visited bit."""

    cached: dict[int, bool]

    def __init__(self, capacity: int, context: CacheContext = NO_CONTEXT):
        super().__init__(capacity, context)
        self.newer: dict[int, int] = {}  # toward the head
        self.older: dict[int, int] = {}  # toward the tail
        self.head = self.tail = self.hand = -1

    def access(self, x: int, position: int) -> None:
        visited, newer, older = self.cached, self.newer, self.older
        if x in visited:
            visited[x] = True
            return
        if len(visited) == self.capacity:
            v = self.hand if self.hand != -1 else self.tail
            while visited[v]:
                visited[v] = False
                v = newer[v] if newer[v] != -1 else self.tail
            self.hand = newer[v]
            o, w = older.pop(v), newer.pop(v)
            if o != -1:
                newer[o] = w
            else:
                self.tail = w
            if w != -1:
                older[w] = o
            else:
                self.head = o
            del visited[v]
        older[x] = self.head  # insert at the head
        newer[x] = -1
        if self.head != -1:
            newer[self.head] = x
        else:
            self.tail = x
        self.head = x
        visited[x] = False

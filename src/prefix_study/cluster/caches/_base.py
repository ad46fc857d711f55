"""What every replica cache offers, and the shared `prefix` hit rule of
policies without their own prefix kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class CacheContext:
    """What context policies need beyond block ids, as `replay_hit_mask`
    gives its kernels: the trace's number of request categories
    (`BlockTrace.categories`), and the block size and cost model that price
    a block's recompute (`replay/simulate.py:recompute_cost`; no cost model:
    its position-linear stand-in)."""

    num_categories: int = 1
    block_size: int | None = None
    cost_model: Any = None


NO_CONTEXT = CacheContext()


class ReplicaCache:
    """A replica's prefix cache, one request at a time.

    `cached` holds (as keys) exactly the block ids a request could hit now;
    `overlap` reads it, `serve` changes it. `len(cache)` is the blocks the
    cache occupies (what SGLang's router reads as its tree size).
    """

    capacity: int
    cached: dict[int, object]

    def __init__(self, capacity: int, context: CacheContext = NO_CONTEXT):
        self.capacity = int(capacity)
        self.context = context
        self.cached = {}

    def overlap(self, blocks: Sequence[int], n_lookup: int) -> int:
        """Leading looked-up blocks of a request that are cached now."""
        cached = self.cached
        k = 0
        while k < n_lookup and blocks[k] in cached:
            k += 1
        return k

    def serve(self, blocks: Sequence[int], n_lookup: int, partial_tail: bool, category: int = 0) -> int:
        """Serve one request; returns its prefix hits (leading cached blocks
        among the first n_lookup). partial_tail: the request also holds an
        uncached partial block while it runs; category: its
        BlockTrace.categories value (workload x turn)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.cached)


class BlockStateCache(ReplicaCache):
    """A policy whose state evolves as under `block` semantics (no prefix
    kernel of its own; replay/policies.py): every block of the request is an
    access in order, and only the leading run of cached looked-up blocks
    counts as hits. Nothing is pinned and a partial tail takes no slot, as
    in the kernels. Subclasses implement `access` (one block, the kernel's
    loop body) and, if they need to know request boundaries, `begin`."""

    def begin(self, category: int) -> None:
        """A request starts (the kernel's REQUEST_START)."""

    def access(self, x: int, position: int) -> None:
        raise NotImplementedError

    def serve(self, blocks: Sequence[int], n_lookup: int, partial_tail: bool, category: int = 0) -> int:
        if self.capacity <= 0:
            return 0
        self.begin(category)
        cached = self.cached
        access = self.access
        hits = 0
        run = True
        for pos, x in enumerate(blocks):
            if run:
                if pos < n_lookup and x in cached:
                    hits += 1
                else:
                    run = False
            access(x, pos)
        return hits

"""Eviction policies inside vLLM's block pool (a documented extension, no fork).

vLLM 0.32's `BlockPool` (v1/core/block_pool.py) keeps every block no running
request holds in `free_block_queue` (kv_cache_utils.FreeKVCacheBlockQueue);
the queue's order *is* the eviction policy: `get_new_blocks` pops the head,
evicting whatever hash the popped block held. The pool calls the queue only
through `popleft`, `popleft_n`, `remove` (a hit on a free block: "touch"),
`append`/`append_n` (freed blocks that hold a hash, tail first per request)
and `prepend_n` (freed blocks without a hash, reused first), and reads
`num_free_blocks`. A policy here is an object with that interface, installed
after the engine is built by assigning the pool's public attribute
`free_block_queue` (`install_eviction_policy`). No vLLM file is touched.

Common rules (all policies): blocks without a hash are reused before any
cached block (newest prepend first, as vLLM does); only cached free blocks are
ordered by the policy. A block is pinned (absent from the queue) while a
request holds it.

- `lru`: vLLM's own queue, left untouched (not replaced).
- `fifo`: a cached block's place is fixed when its content first enters the
  queue (its computing request frees it; within one free call the request's
  tail goes first, as in vLLM's LRU); a hit does not move it.
- `wa_lru`: vLLM's LRU, except that blocks computed by a request of a workload
  that is not cache-friendly are never kept: when that request frees them
  their hashes are evicted (`BlockPool.evict_blocks`) and the blocks go to the
  head as plain free blocks. Blocks it hit (cached before it) are freed as
  usual. The request's workload comes from a map the driver fills
  (`Engine.request_workloads`, internal request id -> workload).
- `sieve`: SIEVE (Zhang et al., NSDI'24) over the cached free blocks in
  insertion order (as `fifo`): a hit sets the block's visited bit; eviction
  moves a hand from the oldest insertion towards the newest, clearing visited
  bits, and evicts the first unvisited block.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from prefix_study.config.schema import EngineEviction

#: name -> (one-line description, queue class or None for vLLM's own)
EVICTION_POLICIES: dict[str, tuple[str, type | None]] = {}


def register_eviction(name: str, description: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        if name in EVICTION_POLICIES:
            raise ValueError(f"eviction policy {name!r} registered twice")
        EVICTION_POLICIES[name] = (description, cls)
        cls.policy_name = name
        return cls

    return wrap


EVICTION_POLICIES["lru"] = ("vLLM's own free queue (LRU, tail first), untouched", None)


def eviction_names() -> list[str]:
    """Names valid for `engine.eviction`."""
    return sorted(EVICTION_POLICIES)


class PolicyFreeQueue:
    """A free-block queue ordered by a per-block key (smallest evicted first).

    Keys are tuples: `(0, -n)` for blocks without a hash (n grows with every
    prepend, so the newest prepend comes first; the initial blocks get
    `(0, block_id)` and come after any prepended block) and `(1, ...)` for
    cached blocks, where subclasses choose the rest in `cached_key`. A heap
    with lazy deletion keeps pops and removals O(log n).
    """

    policy_name = "base"

    def __init__(self, pool: Any, free_blocks: list[Any]) -> None:
        self.pool = pool
        self.blocks = pool.blocks
        self._heap: list[tuple[tuple, int]] = []
        self._key: dict[int, tuple] = {}  # block id -> key while queued
        self._prepends = 0
        self._appends = 0
        self.num_free_blocks = 0
        for block in free_blocks:
            if block.block_hash is not None:
                raise RuntimeError("install the eviction policy before any block is cached")
            self._push(block, (0, block.block_id))

    # -- policy hooks -------------------------------------------------------
    def cached_key(self, block: Any, batch: int, index: int) -> tuple:
        """Key of a freed cached block: `batch` counts free calls, `index` is
        the block's place within its call (tail of a request first)."""
        raise NotImplementedError

    def on_touch(self, block: Any) -> None:
        """A queued block was hit (vLLM is about to pin it)."""

    def on_allocate(self, block: Any) -> None:
        """A block left the queue for new content (its hash is evicted)."""

    # -- FreeKVCacheBlockQueue interface -----------------------------------
    def _push(self, block: Any, key: tuple) -> None:
        bid = block.block_id
        if bid in self._key:
            raise RuntimeError(f"block {bid} queued twice")
        self._key[bid] = key
        heapq.heappush(self._heap, (key, bid))
        self.num_free_blocks += 1

    def _pop_min(self) -> Any:
        while self._heap:
            key, bid = heapq.heappop(self._heap)
            if self._key.get(bid) == key:
                del self._key[bid]
                self.num_free_blocks -= 1
                return self.blocks[bid]
        raise ValueError("No free blocks available")

    def popleft(self) -> Any:
        block = self._pop_min()
        self.on_allocate(block)
        return block

    def popleft_n(self, n: int) -> list[Any]:
        if n > self.num_free_blocks:
            raise ValueError(f"cannot pop {n} of {self.num_free_blocks} free blocks")
        return [self.popleft() for _ in range(n)]

    def remove(self, block: Any) -> None:
        if self._key.pop(block.block_id, None) is None:
            raise RuntimeError(f"remove() called on a block not in the free queue: {block.block_id}")
        self.num_free_blocks -= 1
        self.on_touch(block)

    def prepend_n(self, blocks: list[Any]) -> None:
        for block in reversed(list(blocks)):
            self._prepends += 1
            self._push(block, (0, -self._prepends))

    def append_n(self, blocks: list[Any]) -> None:
        blocks = list(blocks)
        if not blocks:
            return
        self._appends += 1
        for index, block in enumerate(blocks):
            if block.block_hash is None:  # unpin_blocks may append uncached blocks
                self._prepends += 1
                self._push(block, (0, -self._prepends))
            else:
                self._push(block, (1, *self.cached_key(block, self._appends, index)))

    def append(self, block: Any) -> None:
        self.append_n([block])

    def get_all_free_blocks(self) -> list[Any]:
        return [self.blocks[bid] for _, bid in sorted((k, b) for b, k in self._key.items())]

    def iter_blocks_after(self, cursor: Any | None) -> Iterator[Any]:
        blocks = self.get_all_free_blocks()
        start = 0 if cursor is None else next(
            (i + 1 for i, b in enumerate(blocks) if b.block_id == cursor.block_id), len(blocks))
        yield from blocks[start:]


@register_eviction("fifo", "first in, first out: a cached block keeps the place of its first "
                           "release (tail first); hits do not move it")
class FifoFreeQueue(PolicyFreeQueue):
    def __init__(self, pool: Any, free_blocks: list[Any]) -> None:
        self._inserted: dict[int, tuple[int, int]] = {}  # block id -> insertion stamp
        super().__init__(pool, free_blocks)

    def cached_key(self, block: Any, batch: int, index: int) -> tuple:
        return self._inserted.setdefault(block.block_id, (batch, index))

    def on_allocate(self, block: Any) -> None:
        self._inserted.pop(block.block_id, None)


@register_eviction("sieve", "SIEVE: insertion order as fifo, a hit sets a visited bit; the hand "
                            "clears visited bits from the oldest on and evicts the first unvisited")
class SieveFreeQueue(FifoFreeQueue):
    def __init__(self, pool: Any, free_blocks: list[Any]) -> None:
        self._visited: set[int] = set()
        self._cached: list[tuple[tuple, int]] = []  # sorted (key, block id) of queued cached blocks
        self._hand: tuple = ()
        super().__init__(pool, free_blocks)

    def on_touch(self, block: Any) -> None:
        self._visited.add(block.block_id)

    def on_allocate(self, block: Any) -> None:
        super().on_allocate(block)
        self._visited.discard(block.block_id)

    def _pop_min(self) -> Any:
        # Blocks without a hash first (heap, keys (0, ...)); cached ones by the hand.
        while self._heap and self._heap[0][0][0] == 0:
            key, bid = heapq.heappop(self._heap)
            if self._key.get(bid) == key:
                del self._key[bid]
                self.num_free_blocks -= 1
                return self.blocks[bid]
        i = bisect.bisect_left(self._cached, (self._hand, -1))
        while True:
            if not self._cached:
                raise ValueError("No free blocks available")
            if i >= len(self._cached):
                i = 0
            key, bid = self._cached[i]
            if self._key.get(bid) != key:  # touched since it was queued
                del self._cached[i]
                continue
            if bid in self._visited:
                self._visited.discard(bid)
                i += 1
                continue
            del self._cached[i]
            del self._key[bid]
            self.num_free_blocks -= 1
            self._hand = key
            return self.blocks[bid]

    def _push(self, block: Any, key: tuple) -> None:
        if key[0] == 0:
            super()._push(block, key)
            return
        bid = block.block_id
        if bid in self._key:
            raise RuntimeError(f"block {bid} queued twice")
        self._key[bid] = key
        # A block touched and released again may still have its entry (the
        # hand drops entries of pinned blocks only when it passes them): one
        # entry per block, or its visited bit would be spent on the first.
        i = bisect.bisect_left(self._cached, (key, bid))
        if i == len(self._cached) or self._cached[i] != (key, bid):
            self._cached.insert(i, (key, bid))
        self.num_free_blocks += 1


@register_eviction("wa_lru", "workload-aware LRU: vLLM's LRU, but blocks computed by requests of "
                             "workloads that are not cache-friendly are never kept")
class WorkloadAwareFreeQueue(PolicyFreeQueue):
    """Needs `friendly` (cache-friendly workloads) and `workload_of` (internal
    request id -> workload), both set by `install_eviction_policy`."""

    friendly: frozenset[str] = frozenset()
    workload_of: Callable[[str], str | None] = staticmethod(lambda rid: None)

    def __init__(self, pool: Any, free_blocks: list[Any]) -> None:
        self._was_cached: set[int] = set()  # queued blocks hit since their content was computed
        self._dropping = False
        super().__init__(pool, free_blocks)

    def cached_key(self, block: Any, batch: int, index: int) -> tuple:
        return (batch, index)

    def on_touch(self, block: Any) -> None:
        self._was_cached.add(block.block_id)

    def on_allocate(self, block: Any) -> None:
        self._was_cached.discard(block.block_id)

    def append_n(self, blocks: list[Any]) -> None:
        if not self._dropping:
            super().append_n(blocks)
            return
        keep = [b for b in blocks if b.block_id in self._was_cached]
        drop = [b for b in blocks if b.block_id not in self._was_cached]
        if drop:
            self.pool.evict_blocks({b.block_id for b in drop})  # public: drops hashes, emits events
            self.prepend_n(drop)
        super().append_n(keep)

    def free_request(self, request: Any, free: Callable[[Any], None]) -> None:
        """Free `request`'s blocks, dropping them if its workload is not cache-friendly."""
        workload = self.workload_of(request.request_id)
        self._dropping = workload is not None and workload not in self.friendly
        try:
            free(request)
        finally:
            self._dropping = False


@dataclass
class InstalledPolicy:
    name: str
    queue: Any


def install_eviction_policy(scheduler: Any, name: str, friendly: Iterable[str] = (),
                            workload_of: Callable[[str], str | None] | None = None) -> InstalledPolicy:
    """Replace the scheduler's block-pool free queue by policy `name`'s.

    Must run on a fresh engine (no block cached yet). `friendly` and
    `workload_of` are used by `wa_lru` only.
    """
    if name not in EVICTION_POLICIES:
        raise ValueError(f"engine.eviction={name!r}: allowed {eviction_names()}")
    manager = scheduler.kv_cache_manager
    pool = manager.block_pool
    cls = EVICTION_POLICIES[name][1]
    if cls is None:
        return InstalledPolicy(name, pool.free_block_queue)
    if len(manager.coordinator.single_type_managers) != 1:
        raise RuntimeError("in-engine eviction policies support one KV cache group only")
    queue = cls(pool, pool.free_block_queue.get_all_free_blocks())
    if isinstance(queue, WorkloadAwareFreeQueue):
        friendly = frozenset(friendly)
        if not friendly:
            raise ValueError("engine.eviction=wa_lru needs the cache-friendly workloads "
                             "(mix.cache_friendly)")
        if workload_of is None:
            raise ValueError("wa_lru needs a request id -> workload map")
        queue.friendly, queue.workload_of = friendly, workload_of
        original_free = getattr(manager.free, "_unwrapped", manager.free)

        def free(request: Any) -> None:
            queue.free_request(request, original_free)

        free._unwrapped = original_free  # type: ignore[attr-defined]
        manager.free = free
    pool.free_block_queue = queue
    return InstalledPolicy(name, queue)


if sorted(EVICTION_POLICIES) != sorted(e.value for e in EngineEviction):  # config validates by the Enum
    raise RuntimeError(f"engine/eviction.py registers {sorted(EVICTION_POLICIES)}, "
                       f"config/schema.py EngineEviction lists {[e.value for e in EngineEviction]}")

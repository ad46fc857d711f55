"""Replay vLLM's free-queue LRU driven by the schedule the engine ran.

The sequential `prefix` replay (kernels/lru.py) runs one request at a time.
Batched vLLM holds several requests' blocks at once, admits a request only
when its blocks fit (a failed allocation is retried a step later), preempts
running requests by freeing their blocks, and frees several requests per
step. This replay takes that order from the engine's recorded schedule
(`engine/schedule.py`: lookups, allocations, frees in call order) and
re-executes vLLM's block pool (v1/core/block_pool.py) on physical blocks:

- lookup: the longest prefix of the request's block hashes, capped at
  `(num_tokens - 1) // block_size` blocks, that the replay's cache holds
  (a hash may live in several blocks; the oldest copy is used);
- allocate (successful ones only; a failed one has no side effect in vLLM):
  touch the hit blocks (leave the free queue), pop new blocks from the queue
  head until the request holds `blocks_after` (evicting their hashes), and
  cache its blocks up to `cached_after`;
- free: release the request's blocks tail first; blocks with a hash go to the
  queue tail, blocks without one to its head.

Hits are the replay's own: only the *schedule* (when each request was looked
up, allocated and freed, and how many tokens it had) comes from the engine.
Where the replay's hits equal the engine's, every later step is identical;
a request's predicted `num_cached_tokens` is its hit at its first successful
allocation (vLLM records the prefill stats of the first scheduling only).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Sequence

import polars as pl

BATCHED_SCHEMA = {"request_id": pl.String, "hit_tokens": pl.Int64, "preemptions": pl.Int64}


class BlockPoolReplay:
    """vLLM's BlockPool with prefix caching, on block ids and hashes only."""

    def __init__(self, num_blocks: int) -> None:
        if num_blocks < 2:
            raise ValueError(f"num_blocks={num_blocks}: vLLM needs a null block plus one")
        # Block 0 is vLLM's null block (popped from the queue at start-up).
        self.free: OrderedDict[int, None] = OrderedDict((b, None) for b in range(1, num_blocks))
        self.block_hash: list[int | None] = [None] * num_blocks
        self.ref = [0] * num_blocks
        self.cache: dict[int, dict[int, None]] = {}  # hash -> blocks holding it, oldest first
        self.req_blocks: dict[str, list[int]] = {}
        self.num_cached: dict[str, int] = {}

    def lookup(self, hashes: Sequence[int], num_tokens: int, block_size: int) -> list[int]:
        hit: list[int] = []
        for h in hashes[: max(0, (num_tokens - 1) // block_size)]:
            blocks = self.cache.get(h)
            if not blocks:
                break
            hit.append(next(iter(blocks)))
        return hit

    def _evict(self, block: int) -> None:
        h = self.block_hash[block]
        if h is not None:
            holders = self.cache[h]
            del holders[block]
            if not holders:
                del self.cache[h]
            self.block_hash[block] = None

    def allocate(self, rid: str, hit: list[int], hashes: Sequence[int], blocks_after: int,
                 cached_after: int) -> None:
        held = self.req_blocks.setdefault(rid, [])
        for b in hit:
            if self.ref[b] == 0:
                del self.free[b]
            self.ref[b] += 1
            held.append(b)
        need = blocks_after - len(held)
        if need > len(self.free):
            raise RuntimeError(f"replay of {rid} needs {need} blocks, {len(self.free)} free: "
                               "the schedule does not fit this capacity")
        for _ in range(max(0, need)):
            b, _ = self.free.popitem(last=False)
            self._evict(b)
            self.ref[b] = 1
            held.append(b)
        start = self.num_cached.get(rid, 0)
        for i in range(start, min(cached_after, len(held), len(hashes))):
            b = held[i]
            if self.block_hash[b] is None:
                h = hashes[i]
                self.block_hash[b] = h
                self.cache.setdefault(h, {})[b] = None
        self.num_cached[rid] = max(start, cached_after)

    def release(self, rid: str) -> None:
        to_head, to_tail = [], []
        for b in reversed(self.req_blocks.pop(rid, [])):
            self.ref[b] -= 1
            if self.ref[b] == 0:
                (to_head if self.block_hash[b] is None else to_tail).append(b)
        self.num_cached.pop(rid, None)
        for b in reversed(to_head):
            self.free[b] = None
            self.free.move_to_end(b, last=False)
        for b in to_tail:
            self.free[b] = None


def batched_replay(schedule: pl.DataFrame, hashes: Mapping[str, Sequence[int]], num_blocks: int,
                   block_size: int) -> pl.DataFrame:
    """Per request: the replay's cached tokens at its first successful allocation.

    schedule: the engine's `schedule.parquet`; hashes: each request's full
    block hashes (the derived trace at the engine's block size); num_blocks:
    the engine's `capacity_blocks` (including vLLM's null block).
    """
    pool = BlockPoolReplay(num_blocks)
    pending: dict[str, list[int]] = {}
    first_hit: dict[str, int] = {}
    preemptions: dict[str, int] = {}
    for op, rid, num_tokens, ok, blocks_after, cached_after, reason in schedule.sort("seq").select(
            "op", "request_id", "num_tokens", "ok", "blocks_after", "cached_after", "reason").rows():
        h = hashes.get(rid, ())
        if op == "lookup":
            pending[rid] = pool.lookup(h, num_tokens, block_size)
        elif op == "allocate":
            if not ok:
                continue
            hit = pending.pop(rid, [])
            if rid not in first_hit:
                first_hit[rid] = len(hit) * block_size
            pool.allocate(rid, hit, h, blocks_after, cached_after)
        elif op == "free":
            pool.release(rid)
            if reason == "preempted":
                preemptions[rid] = preemptions.get(rid, 0) + 1
        else:
            raise ValueError(f"unknown schedule op {op!r}")
    return pl.DataFrame(
        {"request_id": list(first_hit), "hit_tokens": list(first_hit.values()),
         "preemptions": [preemptions.get(r, 0) for r in first_hit]},
        schema=BATCHED_SCHEMA,
    )


def request_hashes(trace: pl.DataFrame) -> dict[str, list[int]]:
    """{request_id: block hashes in position order} from a derived trace."""
    ordered = trace.sort("request_id", "position").group_by("request_id", maintain_order=True).agg("block_hash")
    return dict(zip(ordered["request_id"].to_list(), ordered["block_hash"].to_list()))

"""FIFO: evict in insertion order; hits change nothing (libCacheSim's FIFO).

Block semantics: libCacheSim's FIFO.

Prefix semantics (`fifo_vllm_free_queue`): FIFO inside vLLM's block pool, as
the in-engine `fifo` policy (engine/eviction.py) runs it, one request at a
time. Blocks are physical: every access that is not a prefix hit (a miss, an
"orphan" whose parent was evicted, a block never looked up) gets a new block,
and a hash may then live in two blocks at once (vLLM does not de-duplicate,
block_pool.BlockHashToBlockMap); a hit pins the hash's oldest copy. Blocks are
pinned while their request runs; when it finishes, a block whose content
enters the free queue for the first time gets its insertion stamp there (the
request's tail first, as vLLM frees `reversed(req_blocks)`); a re-released
block keeps its stamp. Eviction takes the queued block with the oldest stamp;
free slots (never-cached blocks) are used before any eviction, and a request's
partial tail block takes one slot while it runs, exactly as in
`lru_vllm_free_queue` (kernels/lru.py).
"""

from __future__ import annotations

import heapq

import numpy as np

from prefix_study.replay.kernels._common import NOT_LOOKED_UP, PARTIAL_TAIL, REQUEST_START, count_hit, jit
from prefix_study.replay.policies import register_policy


@jit
def _evict_oldest(heap, stamp_rec, rec_stamp, rec_state, rec_id, rec_next, rec_prev, id_head, id_tail):
    """Evict the queued block with the oldest stamp; False if none is queued."""
    while len(heap) > 0:
        st = heapq.heappop(heap)
        r = stamp_rec[st]
        if rec_state[r] != 1 or rec_stamp[r] != st:
            continue  # stale entry: pinned again, or already evicted
        rec_state[r] = 0
        x = rec_id[r]
        p = rec_prev[r]
        q = rec_next[r]
        if p >= 0:
            rec_next[p] = q
        else:
            id_head[x] = q
        if q >= 0:
            rec_prev[q] = p
        else:
            id_tail[x] = p
        return True
    return False


@jit
def fifo_vllm_free_queue(ids, flags, capacity, num_ids, prefix, next_use):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    m = n + 1
    rec_id = np.empty(m, dtype=np.int32)          # physical block (record) -> hash id
    rec_stamp = np.full(m, -1, dtype=np.int64)    # insertion stamp (-1: not yet queued)
    rec_state = np.zeros(m, dtype=np.int8)        # 0 evicted, 1 queued, 2 pinned
    rec_next = np.full(m, -1, dtype=np.int32)     # copies of one hash, oldest first
    rec_prev = np.full(m, -1, dtype=np.int32)
    id_head = np.full(num_ids, -1, dtype=np.int32)
    id_tail = np.full(num_ids, -1, dtype=np.int32)
    stamp_rec = np.empty(m, dtype=np.int32)
    heap = [np.int64(0)]
    heap.pop()
    held = np.empty(n, dtype=np.int32)
    top = 0
    records = 0
    stamps = 0
    used = 0  # cached physical blocks, pinned or queued
    run = True
    partial = False
    for i in range(n):
        f = flags[i]
        if f & REQUEST_START:
            if partial and used >= capacity:
                if _evict_oldest(heap, stamp_rec, rec_stamp, rec_state, rec_id, rec_next, rec_prev,
                                 id_head, id_tail):
                    used -= 1
            partial = (f & PARTIAL_TAIL) != 0
            for j in range(top - 1, -1, -1):  # release tail first
                r = held[j]
                rec_state[r] = 1
                if rec_stamp[r] < 0:
                    rec_stamp[r] = stamps
                    stamp_rec[stamps] = r
                    stamps += 1
                heapq.heappush(heap, rec_stamp[r])
            top = 0
            run = True
        x = ids[i]
        h = id_head[x] >= 0 and run and not (f & NOT_LOOKED_UP)
        run = h
        hits[i] = h
        if h:
            r = id_head[x]
            if rec_state[r] == 1:
                rec_state[r] = 2
                held[top] = r
                top += 1
            continue
        if used < capacity:
            used += 1
        elif not _evict_oldest(heap, stamp_rec, rec_stamp, rec_state, rec_id, rec_next, rec_prev,
                               id_head, id_tail):
            continue  # every block is held by this request
        r = records
        records += 1
        rec_id[r] = x
        rec_state[r] = 2
        t = id_tail[x]
        rec_prev[r] = t
        rec_next[r] = -1
        if t >= 0:
            rec_next[t] = r
        else:
            id_head[x] = r
        id_tail[x] = r
        held[top] = r
        top += 1
    return hits


@register_policy("fifo", "First in, first out: evict the oldest insertion; hits do not reorder. "
                         "Under prefix semantics: FIFO in vLLM's block pool (engine.eviction=fifo).",
                 prefix_kernel=fifo_vllm_free_queue)
@jit
def fifo(ids, flags, capacity, num_ids, prefix, next_use):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    cap = min(capacity, num_ids)  # more slots than ids can never fill
    if cap <= 0:
        return hits
    ring = np.empty(cap, dtype=np.int32)
    cached = np.zeros(num_ids, dtype=np.bool_)
    head = 0  # next slot to write = oldest entry once full
    size = 0
    run = True
    for i in range(n):
        x = ids[i]
        c = cached[x]
        h, run = count_hit(c, flags[i], run, prefix)
        hits[i] = h
        if not c:
            if size == cap:
                cached[ring[head]] = False
            else:
                size += 1
            ring[head] = x
            head += 1
            if head == cap:
                head = 0
            cached[x] = True
    return hits

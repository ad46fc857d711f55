"""FIFO: evict in insertion order; hits change nothing (libCacheSim's FIFO).

Block semantics: libCacheSim's FIFO.

Prefix semantics (`serve_vllm`): FIFO inside vLLM's block pool, as the
in-engine `fifo` policy (engine/eviction.py) runs it, one request at a time.
Blocks are physical: every access that is not a prefix hit (a miss, an
"orphan" whose parent was evicted, a block never looked up) gets a new block,
and a hash may then live in two blocks at once (vLLM does not de-duplicate,
block_pool.BlockHashToBlockMap); a hit pins the hash's oldest copy. Blocks are
pinned while their request runs; when it finishes, a block whose content
enters the free queue for the first time gets its insertion stamp there (the
request's tail first, as vLLM frees `reversed(req_blocks)`); a re-released
block keeps its stamp. Eviction takes the queued block with the oldest stamp
(an indexed heap of queued blocks); free slots (never-used physical blocks)
are used before any eviction, and a request's partial tail block takes one
slot while it runs, exactly as in vLLM's LRU (kernels/lru.py).
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import NOT_LOOKED_UP, PARTIAL_TAIL, REQUEST_START, inline, jit, record_hit, serve_jit
from prefix_study.replay.kernels._heap import heap_push, heap_remove
from prefix_study.replay.kernels._serve import specialise
from prefix_study.replay.policies import register_policy

_FREE, _QUEUED, _PINNED = 0, 1, 2


@jit
def init_vllm(capacity, num_ids, num_accesses, num_categories):
    # registers: physical blocks used, capacity, stamps given, fresh slots
    # taken, queued blocks (heap size), free-slot stack size
    regs = np.zeros(6, dtype=np.int64)
    regs[1] = capacity
    m = max(0, min(capacity, num_accesses))  # physical blocks that can ever exist
    return (regs,
            np.empty(m, dtype=np.int32),           # rec_id: physical block -> hash id
            np.full(m, -1, dtype=np.int64),        # rec_stamp (-1: not yet queued)
            np.zeros(m, dtype=np.int8),            # rec_state
            np.full(m, -1, dtype=np.int32),        # rec_next: copies of one hash, oldest first
            np.full(m, -1, dtype=np.int32),        # rec_prev
            np.full(num_ids, -1, dtype=np.int32),  # id_head: a hash's oldest copy
            np.full(num_ids, -1, dtype=np.int32),  # id_tail
            np.empty(m, dtype=np.int32),           # heap of queued blocks by stamp
            np.full(m, -1, dtype=np.int32),        # where in the heap
            np.zeros(m, dtype=np.float64),         # heap key: the stamp
            np.zeros(m, dtype=np.int64),           # heap tie-break: the stamp
            np.empty(m, dtype=np.int32),           # held by the running request
            np.empty(m, dtype=np.int32))           # free-slot stack


@jit
def contains_vllm(state, x):
    return state[6][x] >= 0


@jit
def _evict_oldest(state):
    """Evict the queued block with the oldest stamp; its slot, or -1."""
    regs, rec_id, rec_stamp, rec_state, rec_next, rec_prev, id_head, id_tail, heap, where, k1, k2 = state[:12]
    if regs[4] == 0:
        return -1
    r = heap[0]
    regs[4] = heap_remove(heap, where, k1, k2, regs[4], r)
    rec_state[r] = _FREE
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
    return r


@inline
def _finish_vllm(state, top, partial, evicted, ne):
    """The running request finishes; returns ne. Its partial tail block gives
    its slot back (evicting the oldest queued block if the pool was full),
    then its blocks are released tail first."""
    regs, rec_id, rec_stamp, rec_state, rec_next, rec_prev, id_head, id_tail, heap, where, k1, k2, held, free = state
    if partial and regs[0] >= regs[1]:
        r = _evict_oldest(state)
        if r >= 0:
            if ne < evicted.shape[0]:
                evicted[ne] = rec_id[r]
            ne += 1
            regs[0] -= 1
            free[regs[5]] = r
            regs[5] += 1
    for j in range(top - 1, -1, -1):
        r = held[j]
        rec_state[r] = _QUEUED
        if rec_stamp[r] < 0:
            rec_stamp[r] = regs[2]
            regs[2] += 1
        k1[r] = float(rec_stamp[r])
        k2[r] = rec_stamp[r]
        regs[4] = heap_push(heap, where, k1, k2, regs[4], r)
    return ne


@serve_jit
def serve_vllm(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, rec_id, rec_stamp, rec_state, rec_next, rec_prev, id_head, id_tail, heap, where, k1, k2, held, free = state
    capacity = regs[1]
    if capacity <= 0:
        return 0, 0
    top = 0  # physical blocks held by the running request: held[:top]
    nh = 0
    ne = 0
    run = True
    partial = False
    for i in range(s, e):
        f = flags[i]
        if f & REQUEST_START:
            if i > s:
                ne = _finish_vllm(state, top, partial, evicted, ne)
            partial = (f & PARTIAL_TAIL) != 0
            top = 0
            run = True
        x = ids[i]
        h = id_head[x] >= 0 and run and not (f & NOT_LOOKED_UP)
        run = h
        hits[i] = h
        if h:
            nh += 1
            r = id_head[x]
            if rec_state[r] == _QUEUED:  # touch: leave the free queue
                regs[4] = heap_remove(heap, where, k1, k2, regs[4], r)
                rec_state[r] = _PINNED
                held[top] = r
                top += 1
            continue
        if regs[0] < capacity:
            regs[0] += 1
            if regs[5] > 0:
                regs[5] -= 1
                r = free[regs[5]]
            else:
                r = regs[3]
                regs[3] += 1
        else:
            r = _evict_oldest(state)
            if r < 0:
                continue  # every block is held by this request
            if ne < evicted.shape[0]:
                evicted[ne] = rec_id[r]
            ne += 1
        rec_id[r] = x
        rec_state[r] = _PINNED
        rec_stamp[r] = -1
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
    ne = _finish_vllm(state, top, partial, evicted, ne)
    return nh, ne


@jit
def init(capacity, num_ids, num_accesses, num_categories):
    cap = max(0, min(capacity, num_ids))  # more slots than ids can never fill
    regs = np.zeros(3, dtype=np.int64)  # size, capacity, head (next slot = oldest once full)
    regs[1] = cap
    return (regs, np.empty(cap, dtype=np.int32), np.zeros(num_ids, dtype=np.bool_))


@jit
def contains(state, x):
    return state[2][x]


@serve_jit
def serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, ring, cached = state
    cap = regs[1]
    if cap <= 0:
        return 0, 0
    size = regs[0]
    head = regs[2]
    nh = 0
    ne = 0
    run = True
    for i in range(s, e):
        x = ids[i]
        f = flags[i]
        c = cached[x]
        run, nh = record_hit(hits, i, c, f, run, prefix, nh)
        if not c:
            if size == cap:
                v = ring[head]
                cached[v] = False
                if ne < evicted.shape[0]:
                    evicted[ne] = v
                ne += 1
            else:
                size += 1
            ring[head] = x
            head += 1
            if head == cap:
                head = 0
            cached[x] = True
    regs[0] = size
    regs[2] = head
    return nh, ne


register_policy("fifo", "First in, first out: evict the oldest insertion; hits do not reorder. "
                        "Under prefix semantics: FIFO in vLLM's block pool (engine.eviction=fifo).",
                specialise(init, serve, contains, __file__),
                prefix_machine=specialise(init_vllm, serve_vllm, contains_vllm, __file__))

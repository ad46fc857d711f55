"""SIEVE (Zhang et al., NSDI'24), as libCacheSim's Sieve.c.

Block semantics: new blocks enter at the queue head with visited=0; a hit
sets visited=1. The hand walks from the tail toward the head, clearing
visited bits, and evicts the first unvisited block; it wraps to the tail at
the head.

Prefix semantics (`serve_vllm`): SIEVE inside vLLM's block pool, as the
in-engine `sieve` policy (engine/eviction.py) runs it, one request at a time.
Blocks are physical and pinned while their request runs, and a block's
place is its insertion stamp, given when its content first enters the free
queue (tail first), exactly as fifo's (kernels/fifo.py). A hit on a queued
block sets its visited bit. Eviction moves the hand from the block after
the last one evicted towards newer stamps (wrapping to the oldest), skipping
pinned blocks, clearing visited bits, and evicts the first unvisited block.
Free slots are used first, and a partial tail block takes one while its
request runs, as in fifo's and vLLM's LRU pool.
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import (NOT_LOOKED_UP, PARTIAL_TAIL, REQUEST_START, inline, jit,
                                                record_hit, serve_jit)
from prefix_study.replay.kernels._serve import specialise
from prefix_study.replay.policies import register_policy


@jit
def init(capacity, num_ids, num_accesses, num_categories):
    regs = np.zeros(5, dtype=np.int64)  # size, capacity, head, tail, hand
    regs[1] = capacity
    regs[2:5] = -1
    return (regs,
            np.full(num_ids, -1, dtype=np.int32),  # newer: toward the head
            np.full(num_ids, -1, dtype=np.int32),  # older: toward the tail
            np.zeros(num_ids, dtype=np.bool_),     # visited
            np.zeros(num_ids, dtype=np.bool_))     # cached


@jit
def contains(state, x):
    return state[4][x]


@serve_jit
def serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, newer, older, visited, cached = state
    capacity = regs[1]
    if capacity <= 0:
        return 0, 0
    size = regs[0]
    head = regs[2]
    tail = regs[3]
    hand = regs[4]
    nh = 0
    ne = 0
    run = True
    for i in range(s, e):
        x = ids[i]
        f = flags[i]
        c = cached[x]
        run, nh = record_hit(hits, i, c, f, run, prefix, nh)
        if c:
            visited[x] = True
            continue
        if size == capacity:
            v = hand if hand != -1 else tail
            while visited[v]:
                visited[v] = False
                v = newer[v] if newer[v] != -1 else tail
            hand = newer[v]
            # unlink v
            o = older[v]
            w = newer[v]
            if o != -1:
                newer[o] = w
            else:
                tail = w
            if w != -1:
                older[w] = o
            else:
                head = o
            cached[v] = False
            if ne < evicted.shape[0]:
                evicted[ne] = v
            ne += 1
        else:
            size += 1
        # insert x at the head
        older[x] = head
        newer[x] = -1
        if head != -1:
            newer[head] = x
        else:
            tail = x
        head = x
        visited[x] = False
        cached[x] = True
    regs[0] = size
    regs[2] = head
    regs[3] = tail
    regs[4] = hand
    return nh, ne


_FREE, _QUEUED, _PINNED = 0, 1, 2


@jit
def init_vllm(capacity, num_ids, num_accesses, num_categories):
    # registers: physical blocks used, capacity, stamps given, fresh slots
    # taken, queued blocks, free-slot stack size, hand (the block the next
    # search starts at; -1: the first stamped after `hand stamp`), hand stamp
    regs = np.zeros(8, dtype=np.int64)
    regs[1] = capacity
    regs[6] = -1
    regs[7] = -1
    m = max(0, min(capacity, num_accesses))  # physical blocks that can ever exist
    order = np.empty(m + 1, dtype=np.int32)  # stamped blocks in stamp order, sentinel m
    order[m] = m
    return (regs,
            np.empty(m, dtype=np.int32),           # rec_id: physical block -> hash id
            np.full(m, -1, dtype=np.int64),        # rec_stamp (-1: not yet queued)
            np.zeros(m, dtype=np.int8),            # rec_state
            np.full(m, -1, dtype=np.int32),        # rec_next: copies of one hash, oldest first
            np.full(m, -1, dtype=np.int32),        # rec_prev
            np.full(num_ids, -1, dtype=np.int32),  # id_head: a hash's oldest copy
            np.full(num_ids, -1, dtype=np.int32),  # id_tail
            order,                                 # order_next
            order.copy(),                          # order_prev
            np.zeros(m, dtype=np.bool_),           # visited
            np.empty(m, dtype=np.int32),           # held by the running request
            np.empty(m, dtype=np.int32))           # free-slot stack


@jit
def contains_vllm(state, x):
    return state[6][x] >= 0


@jit
def _evict_sieve(state):
    """Evict the queued block the hand stops at; its slot, or -1."""
    regs, rec_id, rec_stamp, rec_state, rec_next, rec_prev, id_head, id_tail, nxt, prv, visited = state[:11]
    if regs[4] == 0:
        return -1
    z = nxt.shape[0] - 1
    v = regs[6]
    if v < 0:  # the first block stamped after the last eviction, else the oldest
        v = prv[z]
        if v == z or rec_stamp[v] <= regs[7]:
            v = nxt[z]
        else:
            while prv[v] != z and rec_stamp[prv[v]] > regs[7]:
                v = prv[v]
    while True:
        if v == z:
            v = nxt[z]
        if rec_state[v] != _QUEUED:
            v = nxt[v]
        elif visited[v]:
            visited[v] = False
            v = nxt[v]
        else:
            break
    w = nxt[v]
    p = prv[v]
    nxt[p] = w
    prv[w] = p
    if w == z:
        regs[6] = -1
        regs[7] = rec_stamp[v]
    else:
        regs[6] = w
    regs[4] -= 1
    rec_state[v] = _FREE
    x = rec_id[v]
    p = rec_prev[v]
    q = rec_next[v]
    if p >= 0:
        rec_next[p] = q
    else:
        id_head[x] = q
    if q >= 0:
        rec_prev[q] = p
    else:
        id_tail[x] = p
    return v


@inline
def _finish_vllm(state, top, partial, evicted, ne):
    """The running request finishes; returns ne. Its partial tail block gives
    its slot back (evicting a queued block if the pool was full), then its
    blocks are released tail first; a block queued for the first time is
    stamped newest."""
    regs, rec_id, rec_stamp, rec_state = state[0], state[1], state[2], state[3]
    nxt, prv, held, free = state[8], state[9], state[11], state[12]
    if partial and regs[0] >= regs[1]:
        r = _evict_sieve(state)
        if r >= 0:
            if ne < evicted.shape[0]:
                evicted[ne] = rec_id[r]
            ne += 1
            regs[0] -= 1
            free[regs[5]] = r
            regs[5] += 1
    z = nxt.shape[0] - 1
    for j in range(top - 1, -1, -1):
        r = held[j]
        rec_state[r] = _QUEUED
        regs[4] += 1
        if rec_stamp[r] < 0:
            rec_stamp[r] = regs[2]
            regs[2] += 1
            t = prv[z]
            nxt[t] = r
            prv[r] = t
            nxt[r] = z
            prv[z] = r
    return ne


@serve_jit
def serve_vllm(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, rec_id, rec_stamp, rec_state, rec_next, rec_prev, id_head, id_tail = state[:8]
    visited, held, free = state[10], state[11], state[12]
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
            if rec_state[r] == _QUEUED:  # touch: leave the free queue, visited
                rec_state[r] = _PINNED
                regs[4] -= 1
                visited[r] = True
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
            r = _evict_sieve(state)
            if r < 0:
                continue  # every block is held by this request
            if ne < evicted.shape[0]:
                evicted[ne] = rec_id[r]
            ne += 1
        rec_id[r] = x
        rec_state[r] = _PINNED
        rec_stamp[r] = -1
        visited[r] = False
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


register_policy("sieve", "SIEVE: FIFO queue with a visited bit and a moving hand (lazy promotion). "
                         "Under prefix semantics: SIEVE in vLLM's block pool (engine.eviction=sieve).",
                specialise(init, serve, contains, __file__),
                prefix_machine=specialise(init_vllm, serve_vllm, contains_vllm, __file__))

"""ARC (Megiddo & Modha, FAST'03), as libCacheSim's ARC.c.

T1 holds blocks seen once recently, T2 blocks seen at least twice; B1/B2
remember the ids last evicted from each (ghosts). A hit in T1 or T2 moves the
block to T2's MRU end. A miss that hits a ghost adapts the target size p of
T1 (B1 hit: grow by max(|B2|/|B1|, 1); B2 hit: shrink by max(|B1|/|B2|, 1))
and enters T2; any other miss enters T1. REPLACE evicts T1's LRU into B1 when
|T1| > p (or |T1| == p on a B2 hit, or T2 is empty), else T2's LRU into B2.
On a miss in no list (case IV) with |T1| + |B1| = c, B1's LRU is dropped (or
T1's LRU without a ghost when B1 is empty); otherwise, when all four lists
hold 2c ids, B2's LRU is dropped. As in libCacheSim, evictions (and ghost
trimming) happen only when the cache is full.
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import jit, record_hit, serve_jit
from prefix_study.replay.kernels._dlist import init_lists, pop_tail, push_head, unlink
from prefix_study.replay.kernels._serve import specialise
from prefix_study.replay.policies import register_policy

_NONE, _T1, _T2, _B1, _B2 = 0, 1, 2, 3, 4


@jit
def init(capacity, num_ids, num_accesses, num_categories):
    regs = np.zeros(6, dtype=np.int64)  # blocks held, capacity, |T1|, |T2|, |B1|, |B2|
    regs[1] = capacity
    # Sentinels num_ids + 0..3: T1, T2, B1, B2; nxt[sentinel] = MRU (head), prv[sentinel] = LRU (tail).
    nxt = np.empty(num_ids + 4, dtype=np.int32)
    prv = np.empty(num_ids + 4, dtype=np.int32)
    init_lists(nxt, prv, num_ids)
    return (regs, np.zeros(1, dtype=np.float64), nxt, prv, np.zeros(num_ids, dtype=np.uint8))  # p: target |T1|


@jit
def contains(state, x):
    w = state[4][x]
    return w == _T1 or w == _T2


@serve_jit
def serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, fregs, nxt, prv, where = state
    capacity = regs[1]
    if capacity <= 0:
        return 0, 0
    T1 = nxt.shape[0] - 4
    T2 = T1 + 1
    B1 = T1 + 2
    B2 = T1 + 3
    t1 = regs[2]
    t2 = regs[3]
    b1 = regs[4]
    b2 = regs[5]
    p = fregs[0]
    cap = float(capacity)
    nh = 0
    ne = 0
    run = True
    for i in range(s, e):
        x = ids[i]
        f = flags[i]
        w = where[x]
        c = w == _T1 or w == _T2
        run, nh = record_hit(hits, i, c, f, run, prefix, nh)
        if c:
            unlink(nxt, prv, x)
            if w == _T1:
                t1 -= 1
                t2 += 1
                where[x] = _T2
            push_head(nxt, prv, T2, x)
            continue
        in_b1 = w == _B1
        in_b2 = w == _B2
        if in_b1:
            p = min(p + max(b2 / b1, 1.0), cap)
            b1 -= 1
            unlink(nxt, prv, x)
        elif in_b2:
            p = max(p - max(b1 / b2, 1.0), 0.0)
            b2 -= 1
            unlink(nxt, prv, x)
        where[x] = _NONE
        if t1 + t2 + 1 > capacity:
            replace = True
            if not (in_b1 or in_b2):
                if t1 + b1 + 1 > capacity:
                    if b1 > 0:
                        v = pop_tail(nxt, prv, B1)
                        where[v] = _NONE
                        b1 -= 1
                    else:
                        v = pop_tail(nxt, prv, T1)  # drop T1's LRU without a ghost
                        where[v] = _NONE
                        t1 -= 1
                        if ne < evicted.shape[0]:
                            evicted[ne] = v
                        ne += 1
                        replace = False
                elif t1 + b1 + t2 + b2 >= 2 * capacity and b2 > 0:
                    v = pop_tail(nxt, prv, B2)
                    where[v] = _NONE
                    b2 -= 1
            if replace:
                if (t1 > 0 and (t1 > p or (t1 == p and in_b2))) or t2 == 0:
                    v = pop_tail(nxt, prv, T1)
                    t1 -= 1
                    push_head(nxt, prv, B1, v)
                    where[v] = _B1
                    b1 += 1
                else:
                    v = pop_tail(nxt, prv, T2)
                    t2 -= 1
                    push_head(nxt, prv, B2, v)
                    where[v] = _B2
                    b2 += 1
                if ne < evicted.shape[0]:
                    evicted[ne] = v
                ne += 1
        if in_b1 or in_b2:
            push_head(nxt, prv, T2, x)
            where[x] = _T2
            t2 += 1
        else:
            push_head(nxt, prv, T1, x)
            where[x] = _T1
            t1 += 1
    regs[0] = t1 + t2
    regs[2] = t1
    regs[3] = t2
    regs[4] = b1
    regs[5] = b2
    fregs[0] = p
    return nh, ne


register_policy("arc", "ARC: recency (T1) and frequency (T2) lists sized adaptively by ghost hits.",
                specialise(init, serve, contains, __file__))

"""vLLM's CPU-tier ARC (vllm/v1/kv_offload/cpu/policies/arc.py, vLLM 0.32), a
lower-tier policy of the tier replay: `vllm_arc`.

It is not the textbook ARC of replay/kernels/arc.py. vLLM applies a request
to its CPU tier in two steps, and the tier loop (kernel.py) hands them over as
two small traces:
1. The store (one `prepare_store` of the chunks the request offers, in
   prefix order): ghost hits among the missing chunks adapt the target size
   p of T1, tail first (B1: p += max(1, |B2|/|B1|); B2: p -= max(1,
   |B1|/|B2|)); then as many chunks as the store lacks room for are evicted
   at once, never an offered one: from T1's LRU end while the shrinking T1
   has at least int(p) chunks, else T2's (either list when the other has
   none), into the ghost lists B1/B2, each trimmed to the capacity; then the
   missing chunks enter T1, ghost or not. When fewer chunks can be evicted
   than needed, nothing is stored. The chunks it holds are untouched.
2. The request's end (flag FINISH on every access, the chunks it loaded or
   offered that the tier holds, tail first): a chunk the request stored
   itself (flag INSERTED) moves to the MRU end of its list; any other (a
   reuse) moves from T1 to T2, or to T2's MRU end.
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import jit, serve_jit
from prefix_study.replay.kernels._dlist import init_lists, pop_tail, push_head, unlink
from prefix_study.replay.kernels._serve import specialise
from prefix_study.replay.policies import Policy

from prefix_study.tiers.spec import VLLM_ARC

#: Flag bits of the tier loop's small traces (kernel.py), on top of the trace
#: flags (replay/kernels/_common.py: bits 1..8, which the registry's policies
#: read; they read no other): every access of a request's end trace, and the
#: chunks the request stored itself.
FINISH = 16
INSERTED = 32

_NONE, _T1, _T2, _B1, _B2 = 0, 1, 2, 3, 4


@jit
def init(capacity, num_ids, num_accesses, num_categories):
    regs = np.zeros(7, dtype=np.int64)  # blocks held, capacity, |T1|, |T2|, |B1|, |B2|, store count
    regs[1] = capacity
    nxt = np.empty(num_ids + 4, dtype=np.int32)
    prv = np.empty(num_ids + 4, dtype=np.int32)
    init_lists(nxt, prv, num_ids)
    # p: target |T1|; mark: the store that offered the id (protected from its eviction).
    return (regs, np.zeros(1, dtype=np.float64), nxt, prv, np.zeros(num_ids, dtype=np.uint8),
            np.full(num_ids, -1, dtype=np.int64))


@jit
def contains(state, x):
    w = state[4][x]
    return w == _T1 or w == _T2


@serve_jit
def _next_candidate(nxt, prv, sentinel, cursor, where, mark, store):
    """The next id from `cursor` towards the MRU end of a list that the store
    does not protect (cursor: the last id returned, or the sentinel)."""
    x = prv[cursor]
    while x != sentinel and mark[x] == store:
        x = prv[x]
    return x


@serve_jit
def serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, fregs, nxt, prv, where, mark = state
    capacity = regs[1]
    if capacity <= 0 or e <= s:
        return 0, 0
    T1 = nxt.shape[0] - 4
    T2 = T1 + 1
    B1 = T1 + 2
    B2 = T1 + 3
    t1, t2, b1, b2 = regs[2], regs[3], regs[4], regs[5]
    p = fregs[0]
    nh = 0
    ne = 0
    if flags[s] & FINISH:
        for i in range(s, e):
            x = ids[i]
            w = where[x]
            hits[i] = w == _T1 or w == _T2
            if not hits[i]:
                continue
            nh += 1
            unlink(nxt, prv, x)
            if (flags[i] & INSERTED) == 0 and w == _T1:
                where[x] = _T2
                t1 -= 1
                t2 += 1
                w = _T2
            push_head(nxt, prv, T1 if w == _T1 else T2, x)
        regs[2], regs[3] = t1, t2
        return nh, 0
    store = regs[6]
    regs[6] += 1
    missing = 0
    for i in range(s, e):
        x = ids[i]
        mark[x] = store
        hits[i] = where[x] == _T1 or where[x] == _T2
        if hits[i]:
            nh += 1
        else:
            missing += 1
    for i in range(e - 1, s - 1, -1):  # on_store_miss, tail first
        x = ids[i]
        if where[x] == _B1:
            p = min(p + max(1.0, b2 / b1), float(capacity))
            unlink(nxt, prv, x)
            push_head(nxt, prv, B1, x)
        elif where[x] == _B2:
            p = max(p - max(1.0, b1 / b2), 0.0)
            unlink(nxt, prv, x)
            push_head(nxt, prv, B2, x)
    need = missing - (capacity - t1 - t2)
    if need > 0:
        # Select all victims first (vLLM's evict is atomic), scanning each
        # list once from its LRU end; each list's victims leave in its order.
        c1 = T1
        c2 = T2
        vt1 = t1
        victims = np.empty(need, dtype=np.int64)
        from_t1 = np.empty(need, dtype=np.bool_)
        for k in range(need):
            v = -1
            if vt1 >= int(p):
                y = _next_candidate(nxt, prv, T1, c1, where, mark, store)
                if y != T1:
                    c1 = y
                    v = y
            if v < 0:
                y = _next_candidate(nxt, prv, T2, c2, where, mark, store)
                if y != T2:
                    c2 = y
                    v = y
            if v < 0:
                y = _next_candidate(nxt, prv, T1, c1, where, mark, store)
                if y == T1:
                    fregs[0] = p
                    return nh, 0  # cannot evict enough: vLLM stores nothing
                c1 = y
                v = y
            victims[k] = v
            from_t1[k] = where[v] == _T1
            if from_t1[k]:
                vt1 -= 1
        for k in range(need):
            x = victims[k]
            unlink(nxt, prv, x)
            if from_t1[k]:
                push_head(nxt, prv, B1, x)
                where[x] = _B1
                t1 -= 1
                b1 += 1
            else:
                push_head(nxt, prv, B2, x)
                where[x] = _B2
                t2 -= 1
                b2 += 1
            if ne < evicted.shape[0]:
                evicted[ne] = x
            ne += 1
        while b1 > capacity:
            where[pop_tail(nxt, prv, B1)] = _NONE
            b1 -= 1
        while b2 > capacity:
            where[pop_tail(nxt, prv, B2)] = _NONE
            b2 -= 1
    for i in range(s, e):
        x = ids[i]
        w = where[x]
        if w == _T1 or w == _T2:
            continue
        if w == _B1:
            unlink(nxt, prv, x)
            b1 -= 1
        elif w == _B2:
            unlink(nxt, prv, x)
            b2 -= 1
        push_head(nxt, prv, T1, x)
        where[x] = _T1
        t1 += 1
    regs[0] = t1 + t2
    regs[2], regs[3], regs[4], regs[5] = t1, t2, b1, b2
    fregs[0] = p
    return nh, ne


#: Not in the policy registry: it is a lower tier's policy only (its two-step
#: traces come from the tier loop), so the replay sweeps never list it.
POLICY = Policy(VLLM_ARC, "vLLM's CPU-tier ARC (OffloadingConnector, kv_offload/cpu/policies/arc.py)",
                specialise(init, serve, contains, __file__))

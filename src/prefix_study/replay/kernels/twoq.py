"""2Q (Johnson & Shasha, VLDB'94), full version, as libCacheSim's TwoQ.c.

A first access enters A1in, a FIFO of a quarter of the capacity; hits there
change nothing. Blocks pushed out of A1in leave only their id in A1out, a
FIFO ghost of half the capacity. A miss whose id is in A1out enters Am, an
LRU of the rest of the capacity. Making room evicts from A1in while it is
over its share, else Am's LRU. Below capacity 4 libCacheSim admits nothing
(A1in would have no slot); here A1in keeps one slot and a block that Am
cannot hold enters A1in instead.
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import jit, record_hit, serve_jit
from prefix_study.replay.kernels._dlist import init_lists, pop_tail, push_head, unlink
from prefix_study.replay.kernels._serve import specialise
from prefix_study.replay.policies import register_policy

IN_RATIO = 0.25
OUT_RATIO = 0.5

_NONE, _IN, _OUT, _AM = 0, 1, 2, 3


@jit
def init(capacity, num_ids, num_accesses, num_categories):
    # registers: blocks held, capacity, |A1in|, |A1out|, |Am|, in_cap, out_cap, am_cap
    regs = np.zeros(8, dtype=np.int64)
    regs[1] = capacity
    if capacity > 0:
        regs[5] = max(1, int(capacity * IN_RATIO))
        regs[6] = int(capacity * OUT_RATIO)
        regs[7] = capacity - regs[5]
    nxt = np.empty(num_ids + 3, dtype=np.int32)  # sentinels num_ids + 0..2: A1in, A1out, Am
    prv = np.empty(num_ids + 3, dtype=np.int32)
    init_lists(nxt, prv, num_ids)
    return (regs, nxt, prv, np.zeros(num_ids, dtype=np.uint8))


@jit
def contains(state, x):
    w = state[3][x]
    return w == _IN or w == _AM


@serve_jit
def serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, nxt, prv, where = state
    capacity = regs[1]
    if capacity <= 0:
        return 0, 0
    IN = nxt.shape[0] - 3
    OUT = IN + 1
    AM = IN + 2
    n_in = regs[2]
    n_out = regs[3]
    n_am = regs[4]
    in_cap = regs[5]
    out_cap = regs[6]
    am_cap = regs[7]
    nh = 0
    ne = 0
    run = True
    for i in range(s, e):
        x = ids[i]
        f = flags[i]
        w = where[x]
        c = w == _IN or w == _AM
        run, nh = record_hit(hits, i, c, f, run, prefix, nh)
        if w == _IN:
            continue
        if w == _AM:
            unlink(nxt, prv, x)
            push_head(nxt, prv, AM, x)
            continue
        ghost = w == _OUT
        if ghost:
            unlink(nxt, prv, x)
            where[x] = _NONE
            n_out -= 1
        while n_in + n_am + 1 > capacity:
            if n_in > in_cap or n_am == 0:
                v = pop_tail(nxt, prv, IN)
                n_in -= 1
                where[v] = _NONE
                if ne < evicted.shape[0]:
                    evicted[ne] = v
                ne += 1
                if out_cap > 0:
                    while n_out + 1 > out_cap:
                        g = pop_tail(nxt, prv, OUT)
                        where[g] = _NONE
                        n_out -= 1
                    push_head(nxt, prv, OUT, v)
                    where[v] = _OUT
                    n_out += 1
            else:
                v = pop_tail(nxt, prv, AM)
                where[v] = _NONE
                n_am -= 1
                if ne < evicted.shape[0]:
                    evicted[ne] = v
                ne += 1
        if ghost and am_cap > 0:
            while n_am + 1 > am_cap:
                v = pop_tail(nxt, prv, AM)
                where[v] = _NONE
                n_am -= 1
                if ne < evicted.shape[0]:
                    evicted[ne] = v
                ne += 1
            push_head(nxt, prv, AM, x)
            where[x] = _AM
            n_am += 1
        else:
            push_head(nxt, prv, IN, x)
            where[x] = _IN
            n_in += 1
    regs[0] = n_in + n_am
    regs[2] = n_in
    regs[3] = n_out
    regs[4] = n_am
    return nh, ne


register_policy("twoq", "2Q: FIFO probation (A1in) + ghost ids (A1out) + LRU main (Am).",
                specialise(init, serve, contains, __file__))

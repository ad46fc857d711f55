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

from prefix_study.replay.kernels._common import count_hit, jit
from prefix_study.replay.kernels._dlist import init_lists, pop_tail, push_head, unlink
from prefix_study.replay.policies import register_policy

IN_RATIO = 0.25
OUT_RATIO = 0.5

_NONE, _IN, _OUT, _AM = 0, 1, 2, 3


@register_policy("twoq", "2Q: FIFO probation (A1in) + ghost ids (A1out) + LRU main (Am).")
@jit
def twoq(ids, flags, capacity, num_ids, prefix, next_use):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    in_cap = max(1, int(capacity * IN_RATIO))
    out_cap = int(capacity * OUT_RATIO)
    am_cap = capacity - in_cap
    IN = num_ids
    OUT = num_ids + 1
    AM = num_ids + 2
    nxt = np.empty(num_ids + 3, dtype=np.int32)
    prv = np.empty(num_ids + 3, dtype=np.int32)
    init_lists(nxt, prv, num_ids)
    where = np.zeros(num_ids, dtype=np.uint8)
    n_in = 0
    n_out = 0
    n_am = 0
    run = True
    for i in range(n):
        x = ids[i]
        w = where[x]
        c = w == _IN or w == _AM
        h, run = count_hit(c, flags[i], run, prefix)
        hits[i] = h
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
        if ghost and am_cap > 0:
            while n_am + 1 > am_cap:
                v = pop_tail(nxt, prv, AM)
                where[v] = _NONE
                n_am -= 1
            push_head(nxt, prv, AM, x)
            where[x] = _AM
            n_am += 1
        else:
            push_head(nxt, prv, IN, x)
            where[x] = _IN
            n_in += 1
    return hits

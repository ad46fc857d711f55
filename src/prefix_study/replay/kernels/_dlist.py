"""Intrusive doubly linked lists over block ids (LRU, ARC, 2Q, S3-FIFO).

Several lists share two int32 arrays `nxt`, `prv` of num_ids + k entries
(allocated by the kernel, sentinels set by `init_lists`):
entries 0..num_ids-1 are the block ids (each in at most one list at a time),
entries num_ids..num_ids+k-1 the lists' sentinels. A list is circular through
its sentinel s: nxt[s] is its head, prv[s] its tail, and it is empty when
nxt[s] == s. Every operation is O(1) and inlined into the calling kernel.

kernels/lru.py keeps its list operations written out: through these helpers
its block kernel took ~15% more CPU time (2M accesses, six alternating runs),
and it is the baseline that bench/curve_speed.py and bench/replay_speed.py
measure against.
"""

from __future__ import annotations

import numba as nb
import numpy as np

inline = nb.njit(cache=True, inline="always")


@inline
def init_lists(nxt, prv, num_ids):
    """Make every sentinel (entries num_ids.. of int32 arrays nxt, prv) an
    empty list. The kernel allocates the arrays itself (np.empty): arrays
    made in the kernel are known not to alias, which keeps it fast."""
    for z in range(num_ids, nxt.shape[0]):
        nxt[z] = z
        prv[z] = z


@inline
def push_head(nxt, prv, s, x):
    """Insert x at the head of list s (right after its sentinel)."""
    q = nxt[s]
    nxt[s] = x
    prv[x] = s
    nxt[x] = q
    prv[q] = x


@inline
def push_tail(nxt, prv, s, x):
    """Append x at the tail of list s (right before its sentinel)."""
    t = prv[s]
    nxt[t] = x
    prv[x] = t
    nxt[x] = s
    prv[s] = x


@inline
def unlink(nxt, prv, x):
    """Remove x from its list."""
    p = prv[x]
    q = nxt[x]
    nxt[p] = q
    prv[q] = p


@inline
def pop_head(nxt, prv, s):
    """Remove and return the head of the non-empty list s (its successor is
    nxt[x]; prv[x] is s and need not be read: one cache miss less)."""
    x = nxt[s]
    q = nxt[x]
    nxt[s] = q
    prv[q] = s
    return x


@inline
def pop_tail(nxt, prv, s):
    """Remove and return the tail of the non-empty list s (nxt[x] is s)."""
    x = prv[s]
    p = prv[x]
    nxt[p] = s
    prv[s] = p
    return x

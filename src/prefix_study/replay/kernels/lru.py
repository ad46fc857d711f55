"""LRU, and vLLM's prefix-cache free queue (LRU under `prefix` semantics).

Block semantics: textbook LRU (libCacheSim's LRU, hit for hit).

Prefix semantics (`lru`): vLLM v1's BlockPool. Cached blocks that no running
request holds sit in a free queue; eviction pops the queue head. A request
first "touches" its hit blocks (removes them from the queue), allocates its
missed blocks from the head (evicting whatever hash they held), and when it
finishes frees all its blocks in reverse order (`reversed(req_blocks)` in
single_type_kv_cache_manager.free), appending them to the tail: the prompt's
tail becomes evictable before its head. A request whose last block is partial
(flag PARTIAL_TAIL) also holds one uncached block while it runs, which evicts
one more queued block if the pool is full when it finishes (vLLM returns that
block to the front of the queue, so it is a free slot again). One request at
a time. A request longer than the capacity cannot allocate its excess
blocks: they stay misses and are not cached (vLLM would not schedule it at
all). A request flagged BYPASS (workload-aware LRU, engine.eviction=wa_lru)
drops the blocks it computed when it finishes instead of queueing them.

`lru_plain`: LRU with every access refreshed in access order (head first), no
pinning; identical to `lru` under block semantics. Under prefix semantics its
cache contents evolve exactly like block-LRU, so its prefix hits never exceed
block-LRU's hits; comparing it with `lru` isolates what vLLM's tail-first
release buys.
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import BYPASS, NOT_LOOKED_UP, PARTIAL_TAIL, REQUEST_START, inline, jit, record_hit, serve_jit
from prefix_study.replay.kernels._serve import specialise
from prefix_study.replay.policies import register_policy


@jit
def init_vllm(capacity, num_ids, num_accesses, num_categories):
    regs = np.zeros(2, dtype=np.int64)  # blocks used (pinned or queued), capacity
    regs[1] = capacity
    s = num_ids  # sentinel: nxt[s] = queue head (evicted first), prv[s] = tail
    nxt = np.empty(num_ids + 1, dtype=np.int32)
    prv = np.empty(num_ids + 1, dtype=np.int32)
    nxt[s] = s
    prv[s] = s
    held_max = max(0, min(capacity, num_ids))  # held blocks are cached blocks
    return (regs, nxt, prv, np.zeros(num_ids, dtype=np.bool_), np.zeros(num_ids, dtype=np.bool_),
            np.empty(held_max, dtype=np.int32), np.zeros(held_max, dtype=np.bool_))


@jit
def contains_vllm(state, x):
    return state[3][x]


@inline
def _finish_vllm(nxt, prv, cached, pinned, held, computed, top, used, capacity, partial, bypass, evicted, ne):
    """The running request finishes; returns (used, ne). Its partial tail
    block (uncached) took a slot from the queue head while it ran; vLLM
    returns it to the front of the queue, so it is simply a free slot again.
    Then its blocks are freed tail first."""
    z = nxt.shape[0] - 1
    if partial and used >= capacity and nxt[z] != z:
        v = nxt[z]
        q = nxt[v]
        nxt[z] = q
        prv[q] = z
        cached[v] = False
        used -= 1
        if ne < evicted.shape[0]:
            evicted[ne] = v
        ne += 1
    for j in range(top - 1, -1, -1):
        b = held[j]
        pinned[b] = False
        if bypass and computed[j]:  # not admitted: a free slot again
            cached[b] = False
            used -= 1
            continue
        t = prv[z]
        nxt[t] = b
        prv[b] = t
        nxt[b] = z
        prv[z] = b
    return used, ne


@serve_jit
def serve_vllm(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, nxt, prv, cached, pinned, held, computed = state
    capacity = regs[1]
    if capacity <= 0:
        return 0, 0
    z = nxt.shape[0] - 1  # sentinel
    used = regs[0]
    top = 0  # blocks held by the running request: held[:top]; computed[j]: missed by it
    nh = 0
    ne = 0
    run = True
    partial = False
    bypass = False
    for i in range(s, e):
        f = flags[i]
        if f & REQUEST_START:
            if i > s:
                used, ne = _finish_vllm(nxt, prv, cached, pinned, held, computed, top, used, capacity,
                                        partial, bypass, evicted, ne)
            partial = (f & PARTIAL_TAIL) != 0
            bypass = (f & BYPASS) != 0
            top = 0
            run = True
        x = ids[i]
        c = cached[x]
        if prefix:
            h = c and run and not (f & NOT_LOOKED_UP)
            run = h
        else:
            h = c
        hits[i] = h
        if h and not (f & NOT_LOOKED_UP):
            nh += 1
        if c:
            if not pinned[x]:  # touch: leave the free queue
                p = prv[x]
                q = nxt[x]
                nxt[p] = q
                prv[q] = p
                pinned[x] = True
                held[top] = x
                computed[top] = False
                top += 1
        else:
            if used < capacity:
                used += 1
            elif nxt[z] != z:
                v = nxt[z]  # evict the queue head
                q = nxt[v]
                nxt[z] = q
                prv[q] = z
                cached[v] = False
                if ne < evicted.shape[0]:
                    evicted[ne] = v
                ne += 1
            else:
                continue  # every block is held by this request
            cached[x] = True
            pinned[x] = True
            held[top] = x
            computed[top] = True
            top += 1
    used, ne = _finish_vllm(nxt, prv, cached, pinned, held, computed, top, used, capacity, partial, bypass,
                            evicted, ne)
    regs[0] = used
    return nh, ne


@jit
def init(capacity, num_ids, num_accesses, num_categories):
    regs = np.zeros(2, dtype=np.int64)  # size, capacity
    regs[1] = capacity
    s = num_ids  # sentinel: nxt[s] = most recent, prv[s] = least recent
    nxt = np.empty(num_ids + 1, dtype=np.int32)
    prv = np.empty(num_ids + 1, dtype=np.int32)
    nxt[s] = s
    prv[s] = s
    return (regs, nxt, prv, np.zeros(num_ids, dtype=np.bool_))


@jit
def contains(state, x):
    return state[3][x]


@serve_jit
def serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, nxt, prv, cached = state
    capacity = regs[1]
    if capacity <= 0:
        return 0, 0
    z = nxt.shape[0] - 1  # sentinel
    size = regs[0]
    nh = 0
    ne = 0
    run = True
    for i in range(s, e):
        x = ids[i]
        f = flags[i]
        c = cached[x]
        run, nh = record_hit(hits, i, c, f, run, prefix, nh)
        if c:
            p = prv[x]
            q = nxt[x]
            nxt[p] = q
            prv[q] = p
        else:
            if size == capacity:
                v = prv[z]
                p = prv[v]
                nxt[p] = z
                prv[z] = p
                cached[v] = False
                if ne < evicted.shape[0]:
                    evicted[ne] = v
                ne += 1
            else:
                size += 1
            cached[x] = True
        q = nxt[z]
        nxt[z] = x
        prv[x] = z
        nxt[x] = q
        prv[q] = x
    regs[0] = size
    return nh, ne


LRU = specialise(init, serve, contains, __file__)

register_policy(
    "lru",
    "Least recently used. Under prefix semantics: vLLM's free queue "
    "(blocks pinned while in use, released tail first).",
    LRU,
    prefix_machine=specialise(init_vllm, serve_vllm, contains_vllm, __file__),
)

register_policy(
    "lru_plain",
    "LRU refreshed in access order (head first), no pinning; equals lru under "
    "block semantics, plain-LRU recency under prefix semantics.",
    LRU,
)

"""LRU, and vLLM's prefix-cache free queue (LRU under `prefix` semantics).

Block semantics: textbook LRU (libCacheSim's LRU, hit for hit).

Prefix semantics (`lru`): vLLM v1's BlockPool. Cached blocks that no running
request holds sit in a free queue; eviction pops the queue head. A request
first "touches" its hit blocks (removes them from the queue), allocates its
missed blocks from the head (evicting whatever hash they held), and when it
finishes frees all its blocks in reverse order (`reversed(req_blocks)` in
single_type_kv_cache_manager.free), appending them to the tail: the prompt's
tail becomes evictable before its head. A request whose last block is partial
(flag PARTIAL_TAIL) also holds one uncached block while it runs, which may
evict one more queued block. One request at a time. A request
longer than the capacity cannot allocate its excess blocks: they stay misses
and are not cached (vLLM would not schedule it at all).

`lru_plain`: LRU with every access refreshed in access order (head first), no
pinning; identical to `lru` under block semantics. Under prefix semantics its
cache contents evolve exactly like block-LRU, so its prefix hits never exceed
block-LRU's hits; comparing it with `lru` isolates what vLLM's tail-first
release buys.
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import BYPASS, NOT_LOOKED_UP, PARTIAL_TAIL, REQUEST_START, count_hit, jit
from prefix_study.replay.policies import register_policy


@jit
def lru_vllm_free_queue(ids, flags, capacity, num_ids, prefix, next_use):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    s = num_ids  # sentinel: nxt[s] = queue head (evicted first), prv[s] = tail
    nxt = np.empty(num_ids + 1, dtype=np.int32)
    prv = np.empty(num_ids + 1, dtype=np.int32)
    nxt[s] = s
    prv[s] = s
    cached = np.zeros(num_ids, dtype=np.bool_)
    pinned = np.zeros(num_ids, dtype=np.bool_)
    held = np.empty(n, dtype=np.int32)  # blocks held by the running request
    computed = np.zeros(n, dtype=np.bool_)  # held[j] was computed (missed) by the request
    top = 0
    used = 0  # cached blocks, pinned or queued
    run = True
    partial = False
    bypass = False
    for i in range(n):
        f = flags[i]
        if f & REQUEST_START:
            # The previous request's partial tail block (uncached) took a slot
            # from the queue head while it ran; vLLM returns it to the front of
            # the queue, so it is simply a free slot again afterwards.
            if partial and used >= capacity and nxt[s] != s:
                v = nxt[s]
                q = nxt[v]
                nxt[s] = q
                prv[q] = s
                cached[v] = False
                used -= 1
            partial = (f & PARTIAL_TAIL) != 0
            # Finish the previous request: free its blocks tail first.
            for j in range(top - 1, -1, -1):
                b = held[j]
                pinned[b] = False
                if bypass and computed[j]:  # not admitted: a free slot again
                    cached[b] = False
                    used -= 1
                    continue
                t = prv[s]
                nxt[t] = b
                prv[b] = t
                nxt[b] = s
                prv[s] = b
            top = 0
            run = True
            bypass = (f & BYPASS) != 0
        x = ids[i]
        c = cached[x]
        if prefix:
            h = c and run and not (f & NOT_LOOKED_UP)
            run = h
        else:
            h = c
        hits[i] = h
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
            elif nxt[s] != s:
                v = nxt[s]  # evict the queue head
                q = nxt[v]
                nxt[s] = q
                prv[q] = s
                cached[v] = False
            else:
                continue  # every block is held by this request
            cached[x] = True
            pinned[x] = True
            held[top] = x
            computed[top] = True
            top += 1
    return hits


@register_policy(
    "lru",
    "Least recently used. Under prefix semantics: vLLM's free queue "
    "(blocks pinned while in use, released tail first).",
    prefix_kernel=lru_vllm_free_queue,
)
@jit
def lru(ids, flags, capacity, num_ids, prefix, next_use):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    s = num_ids  # sentinel: nxt[s] = most recent, prv[s] = least recent
    nxt = np.empty(num_ids + 1, dtype=np.int32)
    prv = np.empty(num_ids + 1, dtype=np.int32)
    nxt[s] = s
    prv[s] = s
    cached = np.zeros(num_ids, dtype=np.bool_)
    size = 0
    run = True
    for i in range(n):
        x = ids[i]
        c = cached[x]
        h, run = count_hit(c, flags[i], run, prefix)
        hits[i] = h
        if c:
            p = prv[x]
            q = nxt[x]
            nxt[p] = q
            prv[q] = p
        else:
            if size == capacity:
                v = prv[s]
                p = prv[v]
                nxt[p] = s
                prv[s] = p
                cached[v] = False
            else:
                size += 1
            cached[x] = True
        q = nxt[s]
        nxt[s] = x
        prv[x] = s
        nxt[x] = q
        prv[q] = x
    return hits


register_policy(
    "lru_plain",
    "LRU refreshed in access order (head first), no pinning; equals lru under "
    "block semantics, plain-LRU recency under prefix semantics.",
)(lru)

"""What an `approximate` prefix-aware router believes each replica caches.

Such a router never sees the replicas' caches: it remembers which prompt
blocks it sent where, and forgets them the way its source does:
- Dynamo's ApproxKvIndexer: every routed block expires `ttl_s` after it was
  last routed; past `max_entries` the earliest-expiring entries are pruned
  down to `prune_target_ratio` of it (later blocks of a request first);
- SGLang's cache-aware tree: every `trim_interval_s` each replica's tree is
  cut to `trim_size` by least recent use;
- llm-d's approximate prefix producer: one LRU of `lru_capacity` blocks per
  replica.
The index is keyed by the trace's block ids (chained hashes, so a block id
stands for its whole prefix, like the routers' own block/prefix hashes).

The index is a tuple of arrays (`approx_index`) and numba functions over
it, called from the routers' numba `choose` and `routed`. Per replica an
ordered list of blocks by time last routed (oldest first), linked through
arrays indexed by replica x block id: memory is 25 bytes x replicas x
distinct blocks of the trace.
"""

from __future__ import annotations

import math

import numpy as np

from prefix_study.replay.kernels._common import inline, jit

# settings[...] of an index.
TTL_S, LRU_CAPACITY, MAX_ENTRIES, PRUNE_TARGET_RATIO, TRIM_INTERVAL_S, TRIM_SIZE, NEXT_TRIM = range(7)


def approx_index(num_replicas: int, num_ids: int, *, ttl_s: float = math.inf, lru_capacity: int = 0,
                 max_entries: int = 0, prune_target_ratio: float = 1.0, trim_interval_s: float = 0.0,
                 trim_size: int = 0) -> tuple:
    """An empty index of `num_replicas` replicas over block ids 0..num_ids-1:
    (settings, counts: blocks per replica then their total, member, next,
    previous, time last routed); node r * num_ids + b is block b on replica
    r, node num_replicas * num_ids + r replica r's list head."""
    r, n = int(num_replicas), int(num_ids)
    settings = np.array([ttl_s, lru_capacity, max_entries, prune_target_ratio, trim_interval_s, trim_size,
                         trim_interval_s if trim_interval_s > 0 else math.inf], dtype=np.float64)
    links = np.empty(r * n + r, dtype=np.int64)
    links[r * n:] = np.arange(r * n, r * n + r)
    return (settings, np.zeros(r + 1, dtype=np.int64), np.zeros(r * n, dtype=np.bool_), links.copy(),
            links, np.zeros(r * n, dtype=np.float64))


@inline
def _num_ids(ix):
    return ix[2].shape[0] // (ix[1].shape[0] - 1)


@inline
def _oldest(ix, r):
    """Node of replica r's least recently routed block."""
    return ix[3][ix[2].shape[0] + r]


@inline
def _unlink(nxt, prv, v):
    p = prv[v]
    q = nxt[v]
    nxt[p] = q
    prv[q] = p


@inline
def _drop_oldest(ix, r):
    counts, member, nxt, prv = ix[1], ix[2], ix[3], ix[4]
    v = _oldest(ix, r)
    _unlink(nxt, prv, v)
    member[v] = False
    counts[r] -= 1
    counts[counts.shape[0] - 1] -= 1


@jit
def refresh(ix, now):
    """Drop what has expired (TTL) or been trimmed (periodic) by `now`."""
    settings, counts, stamp = ix[0], ix[1], ix[5]
    num_replicas = counts.shape[0] - 1
    if settings[TTL_S] != math.inf:
        horizon = now - settings[TTL_S]
        for r in range(num_replicas):
            while counts[r] > 0 and stamp[_oldest(ix, r)] <= horizon:
                _drop_oldest(ix, r)
    while now >= settings[NEXT_TRIM]:
        for r in range(num_replicas):
            while counts[r] > settings[TRIM_SIZE]:
                _drop_oldest(ix, r)
        settings[NEXT_TRIM] += settings[TRIM_INTERVAL_S]


@jit
def overlaps(ix, ids, s, n, out):
    """Per replica, the leading blocks of ids[s:s+n] it is believed to hold."""
    member = ix[2]
    num_ids = _num_ids(ix)
    for r in range(out.shape[0]):
        k = 0
        while k < n and member[r * num_ids + ids[s + k]]:
            k += 1
        out[r] = k
    return out


@jit
def any_replica_run(ix, ids, s, n, out):
    """llm-d's matchLongestPrefix: walk ids[s:s+n] while any replica holds the
    block, counting for each replica the blocks it holds."""
    member = ix[2]
    num_ids = _num_ids(ix)
    out[:] = 0
    for k in range(n):
        b = ids[s + k]
        held = False
        for r in range(out.shape[0]):
            if member[r * num_ids + b]:
                out[r] += 1
                held = True
        if not held:
            break
    return out


@jit
def insert(ix, r, ids, s, n, now, tail_first):
    """Replica r was sent blocks ids[s:s+n] at `now` (in reverse order if
    tail_first: they then expire head first among equal times)."""
    settings, counts, member, nxt, prv, stamp = ix
    num_ids = _num_ids(ix)
    z = member.shape[0] + r
    last = counts.shape[0] - 1
    for j in range(n):
        v = r * num_ids + ids[s + (n - 1 - j if tail_first else j)]
        if member[v]:
            _unlink(nxt, prv, v)  # move to the end
        else:
            member[v] = True
            counts[r] += 1
            counts[last] += 1
        t = prv[z]
        nxt[t] = v
        prv[v] = t
        nxt[v] = z
        prv[z] = v
        stamp[v] = now
    if settings[LRU_CAPACITY] > 0:
        while counts[r] > settings[LRU_CAPACITY]:
            _drop_oldest(ix, r)
    if settings[MAX_ENTRIES] > 0 and counts[last] > settings[MAX_ENTRIES]:
        # Remove the oldest entries over all replicas down to the target.
        target = int(settings[MAX_ENTRIES] * settings[PRUNE_TARGET_RATIO])
        while counts[last] > target:
            best = -1
            for q in range(last):
                if counts[q] > 0 and (best < 0 or stamp[_oldest(ix, q)] < stamp[_oldest(ix, best)]):
                    best = q
            _drop_oldest(ix, best)


@jit
def sizes(ix, out):
    """Blocks believed held per replica. (An element loop: an array-to-array
    slice assignment makes numba compile its shape-mismatch message, ~3 CPU-s
    per process.)"""
    counts = ix[1]
    for r in range(out.shape[0]):
        out[r] = counts[r]
    return out

"""Helpers shared by the kernels (inlined by numba)."""

from __future__ import annotations

import numba as nb

# Per-access flag bits of an encoded trace (set by replay/trace.py:encode_trace,
# read by every kernel as compile-time constants).
#: This access is the first block of a request.
REQUEST_START = 1
#: The engine stores this block but never looks it up (trace column `lookup`
#: is false: blocks from the prompt's last token on, and output blocks). Such
#: an access updates the cache like any other, is never a prefix hit, and is
#: left out of accesses and hits under both semantics.
NOT_LOOKED_UP = 2
#: On a request's first row: the request also held a partial tail block
#: (never cached) while it ran (trace column `partial_tail`).
PARTIAL_TAIL = 4
#: On a request's first row: the request's workload is not admitted
#: (workload-aware LRU under prefix semantics, engine.eviction=wa_lru): the
#: blocks it computes are dropped when it finishes instead of being kept (set
#: by mixed/workload_aware.py:wa_lru_hit_mask).
BYPASS = 8

#: Kernels compile once per machine (cached next to the source) and release
#: the GIL, so a caller may run several replays in threads.
jit = nb.njit(cache=True, nogil=True, boundscheck=False)
#: Helpers inlined into their caller by numba.
inline = nb.njit(cache=True, nogil=True, boundscheck=False, inline="always")
#: A policy's `serve` (replay/policies.py): compiled once and called by each
#: loop that drives it (kernels/_serve.py, tiers/kernel.py). Inlined by numba
#: instead, its whole body was typed again at every call site: the nine
#: prefix policies' cluster loops took 31.2 CPU-s to compile against 22.6,
#: the tier tests' kernels 30.4 against 24.5, for the same run time
#: (bench/cluster_speed.py, bench/tier_speed.py).
serve_jit = jit


@nb.njit(cache=True, inline="always")
def count_hit(cached: bool, flag: int, run: bool, prefix: bool) -> tuple[bool, bool]:
    """Hit rule of both semantics; returns (hit, run) where `run` says the
    request is still inside its cached prefix."""
    if flag & REQUEST_START:
        run = True
    if prefix:
        hit = cached and run and not (flag & NOT_LOOKED_UP)
        return hit, hit
    return cached, run


@inline
def record_hit(hits, i, cached, flag, run, prefix, counted):
    """`count_hit` for access i of a `serve`: writes hits[i] and returns (run,
    counted), counted being the looked-up hits so far."""
    h, run = count_hit(cached, flag, run, prefix)
    hits[i] = h
    if h and not (flag & NOT_LOOKED_UP):
        counted += 1
    return run, counted

"""Helpers shared by the kernels (inlined by numba)."""

from __future__ import annotations

import numba as nb

# Flag bits (documented in replay/trace.py, which sets them).
REQUEST_START = 1
NOT_LOOKED_UP = 2
PARTIAL_TAIL = 4

#: Kernels compile once per machine (cached next to the source) and release
#: the GIL, so a caller may run several replays in threads.
jit = nb.njit(cache=True, nogil=True, boundscheck=False)


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

"""The per-request state machines' shared loops, written once and specialised per policy.

Every online policy is a pair of numba functions over explicit state arrays
(replay/policies.py has the convention): `init(...) -> state` and
`serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted) ->
(hits, evictions)` for the whole requests at accesses s..e-1, plus `contains(state,
id)` for a router's lookup. This module holds what every policy does with
them: the whole-trace replay (`serve` called from Python on runs of whole
requests), and a cluster's compiled per-request call (one replica serves,
then every replica reports its overlap with the next request, what precise
routers see).

numba cannot cache a function that takes another jitted function as an
argument (the dispatcher's identity is part of the cache key), nor a closure
over one. So `specialise` copies the cluster's plain Python loops below, binds
the policy's `serve` and `contains` as globals, and gives the copy the policy
module's file name: numba then caches it next to the policy (`__pycache__`),
keyed on that file's time stamp, and a name that carries a hash of this file
invalidates it when these loops change. (numba does not track callees in other
files, here or anywhere: edit `_dlist.py`/`_heap.py` and clear the cache.)
"""

from __future__ import annotations

import hashlib
import types
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
from numba.typed import List

from prefix_study.replay.kernels._common import NOT_LOOKED_UP, REQUEST_START, jit

#: Accesses (whole requests) per `serve` call of a whole-trace replay.
CHUNK = 1 << 16

_VERSION = hashlib.blake2b(Path(__file__).read_bytes(), digest_size=4).hexdigest()


def _replay_with(serve: Callable) -> Callable:
    """The whole-trace replay of `serve`: `serve` itself, called from Python on
    runs of whole requests of about CHUNK accesses. A numba loop around it
    would be a second compiled copy of `serve` (linking it re-optimises it:
    more compile time than `serve` itself, 13.7 CPU-s against 11.9 for the nine
    prefix policies) for ~80 calls on a 5 M-access trace."""

    def replay(state, ids, flags, cost, category, prefix, hits):
        n = ids.shape[0]
        evicted = np.empty(2 * CHUNK + 1, dtype=np.int32)
        s = 0
        while s < n:
            e = _next_request_start(flags, min(s + CHUNK, n))
            if 2 * (e - s) + 1 > evicted.shape[0]:
                evicted = np.empty(2 * (e - s) + 1, dtype=np.int32)
            serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted)
            s = e
        return hits

    return replay


def _next_request_start(flags: np.ndarray, e: int) -> int:
    """The first access at or after `e` that starts a request (len(flags) if none)."""
    n = flags.shape[0]
    while e < n:
        starts = np.flatnonzero(flags[e:e + CHUNK] & REQUEST_START)
        if starts.size:
            return e + int(starts[0])
        e += CHUNK
    return n


# The loops below are templates: `init`, `serve` and `contains` are the globals that
# `specialise` binds (they are not defined in this module).


def _init_states(k, capacity, num_ids, num_accesses, num_categories):  # pragma: no cover - numba
    # A cluster's k replica states in a typed List, built here (compiled and
    # cached with the policy) rather than by appending from Python, which
    # compiles the List's methods for the state's type in every process.
    states = List()
    for _ in range(k):
        states.append(init(capacity, num_ids, num_accesses, num_categories))  # noqa: F821
    return states


def _holds(states, r, blocks, out):  # pragma: no cover - numba
    # Which of `blocks` replica r caches (tests check a replica's evictions).
    for j in range(blocks.shape[0]):
        out[j] = contains(states[r], blocks[j])  # noqa: F821
    return out


def _serve_and_look(states, r, ids, flags, cost, category, s, e, prefix, hits, evicted, s2, e2, seen,
                    sizes):  # pragma: no cover - numba
    # A cluster's one call per request: replica r (none if r < 0) serves the
    # request at accesses s..e-1, then every replica reports how many leading
    # looked-up blocks of the request at s2..e2-1 it holds (seen) and how
    # many blocks it holds (sizes, registers[0] by convention).
    out = (0, 0)
    if r >= 0:
        out = serve(states[r], ids, flags, cost, category, s, e, prefix, hits, evicted)  # noqa: F821
    for q in range(len(states)):
        st = states[q]
        k = s2
        while k < e2 and not (flags[k] & NOT_LOOKED_UP) and contains(st, ids[k]):  # noqa: F821
            k += 1
        seen[q] = k - s2
        sizes[q] = st[0][0]
    return out


@dataclass(frozen=True)
class StateMachine:
    """One policy's state machine and its specialised loops.

    init(capacity, num_ids, num_accesses, num_categories) -> state: a tuple
    of arrays whose first is an int64 register array with registers[0] = the
    blocks held. num_accesses bounds the blocks a policy with physical copies
    (fifo under prefix semantics) can hold.
    replay(state, ids, flags, cost, category, prefix, hits) -> hits: serve
    every request of a trace in order.
    init_states(k, capacity, num_ids, num_accesses, num_categories): k
    states in a numba typed List; serve_and_look(states, r, ..., s2, e2,
    seen, sizes): the cluster's entry over it (one call per request);
    holds(states, r, blocks, out): which of `blocks` replica r caches."""

    init: Callable
    serve: Callable
    contains: Callable
    replay: Callable
    init_states: Callable
    serve_and_look: Callable
    holds: Callable


def _relocate(template: Callable, bindings: dict, module_file: str, name: str) -> Callable:
    code = template.__code__.replace(co_filename=module_file, co_name=name, co_qualname=name)
    fn = types.FunctionType(code, {**template.__globals__, **bindings}, name)
    fn.__qualname__ = name
    return jit(fn)


def specialise(init: Callable, serve: Callable, contains: Callable, module_file: str) -> StateMachine:
    """The state machine of `serve` (defined in `module_file`) with its loops."""
    bindings = {"serve": serve, "contains": contains}
    base = f"{serve.__name__}_{_VERSION}"
    return StateMachine(
        init, serve, contains,
        replay=_replay_with(serve),
        init_states=_init_states_of(init, module_file),
        serve_and_look=_relocate(_serve_and_look, bindings, module_file, f"{base}_serve_and_look"),
        holds=_relocate(_holds, bindings, module_file, f"{base}_holds"),
    )


def with_init(machine: StateMachine, init: Callable, module_file: str) -> StateMachine:
    """`machine` whose states start from `init` instead (same serve)."""
    return replace(machine, init=init, init_states=_init_states_of(init, module_file))


def _init_states_of(init: Callable, module_file: str) -> Callable:
    return _relocate(_init_states, {"init": init}, module_file, f"{init.__name__}_{_VERSION}_init_states")

"""Eviction policy registry (libCacheSim style).

A policy is one file under `replay/kernels/`, registered with
`register_policy`. An online policy is a state machine: a pair of numba
functions over explicit state arrays (kernels/_serve.py specialises the
loops that drive them):

    init(capacity, num_ids, num_accesses, num_categories) -> state
    serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted)
        -> (hits, evictions)
    contains(state, id) -> bool

`serve` serves the whole requests at accesses s..e-1 of the encoded trace,
in order (one at a time: a request finishes before the next starts; a
cluster replica calls it once per request). ids: dense block id per access
(int32); flags: REQUEST_START / NOT_LOOKED_UP / PARTIAL_TAIL / BYPASS bits
(uint8; a request's own bits are on its first access); prefix: count hits
with `prefix` semantics (a request hits only its longest cached prefix)
instead of `block` semantics (every access looked up on its own). It writes
each access's hit into hits[s:e], the ids of the blocks it evicted to make
room into `evicted` (what a lower KV tier would take; at most 2 (e - s) + 1
of them; a shorter buffer keeps the first ones), and returns the looked-up
hits and the number of evictions. `contains` says whether a request could
hit a block now (a precise router's lookup). The state is a tuple of arrays
whose first is an int64 register array, registers[0] = blocks held,
registers[1] = capacity (a capacity <= 0 serves nothing and never hits).

One `serve` drives everything: the replay stage's whole-trace run (`serve`
itself, called on runs of whole requests of 64 K accesses,
kernels/_serve.py), a cluster replica (cluster/simulate.py holds one state
per replica), and the tests of the in-engine hooks (engine/eviction.py).

Context: cost is the recompute cost of each access's block (float64[n];
simulate.py's `recompute_cost`) and category its workload x turn index
(int32[n]; BlockTrace.categories); only policies registered with
`needs_context` read them (the others get empty arrays).

Under `prefix` semantics a policy sees the same access stream as under
`block` semantics (hit blocks are re-used, missed blocks are recomputed and
inserted) and only counts differently: an access is a hit only while the
request is still inside its cached prefix. A cached block met after the first
miss (an "orphan" whose parent was evicted) is a miss but refreshes the
policy's metadata like a hit would. So FIFO evicts by time of
(re)computation, S3-FIFO and SIEVE keep their frequency bits, and no block is
pinned while its request runs. Since the cache state evolves as under block
semantics, prefix hits are a subset of block hits.

The exception is a policy that registers its own `prefix` state machine:
`lru` and `fifo` do, with vLLM's block pool (pin on use, release tail first;
kernels/lru.py, kernels/fifo.py).

An offline policy (`belady`, needs each access's next use) registers a
whole-trace `kernel(ids, flags, capacity, num_ids, prefix, next_use) -> hits`
instead and has no per-request state (a replica cannot know its future).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from prefix_study.registry import POLICY_REGISTRY, online_policy_names, unsupported_reason

if TYPE_CHECKING:
    from prefix_study.replay.kernels._serve import StateMachine

Kernel = Callable[..., object]

__all__ = ["POLICIES", "Policy", "get_policy", "online_policy_names", "policy_names", "register_policy",
           "unsupported_reason"]


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    # The online state machine (None for an offline policy).
    machine: StateMachine | None = None
    # Used instead of `machine` under prefix semantics when the policy's
    # behaviour there differs from "same updates, prefix hit counting".
    prefix_machine: StateMachine | None = None
    # Offline policies: a whole-trace kernel.
    kernel: Kernel | None = None
    needs_next_use: bool = False
    # serve reads the cost and category arrays.
    needs_context: bool = False

    @property
    def online(self) -> bool:
        return self.machine is not None

    def state_machine(self, semantics: str) -> StateMachine:
        """The state machine that runs under `semantics`."""
        if self.machine is None:
            raise ValueError(f"policy {self.name!r} is offline (a whole-trace kernel, no per-request serve)")
        if semantics == "prefix" and self.prefix_machine is not None:
            return self.prefix_machine
        return self.machine


POLICIES: dict[str, Policy] = {}


def register_policy(
    name: str,
    description: str,
    machine: StateMachine | None = None,
    *,
    prefix_machine: StateMachine | None = None,
    kernel: Kernel | None = None,
    needs_next_use: bool = False,
    needs_context: bool = False,
) -> Policy:
    """Register an online policy (its state machine, from
    kernels/_serve.py:specialise) or an offline one (`kernel`) under `name`."""
    if name in POLICIES:
        raise ValueError(f"policy {name!r} registered twice")
    if (machine is None) == (kernel is None):
        raise ValueError(f"policy {name!r}: give either a state machine or a whole-trace kernel")
    POLICIES[name] = Policy(name, description, machine, prefix_machine, kernel, needs_next_use, needs_context)
    return POLICIES[name]


def get_policy(name: str) -> Policy:
    """The policy `name`, importing its kernel module on first use."""
    if name not in POLICIES:
        POLICY_REGISTRY.load(name)
    return POLICIES[name]


def policy_names() -> list[str]:
    """Names of all policies, read from the kernel files without importing them."""
    return sorted(POLICY_REGISTRY.names())

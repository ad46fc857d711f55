"""Eviction policy registry (libCacheSim style).

A policy is one numba kernel in one file under `replay/kernels/`, registered
with `@register_policy`. Every kernel has the same signature:

    kernel(ids, flags, capacity, num_ids, prefix, next_use) -> hits (bool[n])

ids: dense block id per access (int32); flags: REQUEST_START / NOT_LOOKED_UP
bits (uint8); capacity: blocks; num_ids: number of distinct ids; prefix: count
hits with `prefix` semantics (a request hits only its longest cached prefix)
instead of `block` semantics (every access looked up on its own); next_use:
index of each access's next use (only filled for policies that need it).

Under `prefix` semantics a kernel sees the same access stream as under `block`
semantics (hit blocks are re-used, missed blocks are recomputed and inserted)
and only counts differently: an access is a hit only while the request is
still inside its cached prefix. A cached block met after the first miss (an
"orphan" whose parent was evicted) is a miss but refreshes the policy's
metadata like a hit would. So FIFO evicts by time of (re)computation, S3-FIFO
and SIEVE keep their frequency bits, Belady evicts by next use, and no block is
pinned while its request runs (requests are replayed one at a time and a
request's blocks are treated as consumed once computed). Since the cache state
evolves as under block semantics, prefix hits are a subset of block hits.

The exception is a policy that registers its own `prefix_kernel`: `lru` does,
with vLLM's free queue (pin on use, release tail first; kernels/lru.py).

Context (`needs_context=True`): policies that group or weigh blocks by what
the id stream does not carry get four more arguments, appended so the six
above keep their meaning:

    kernel(ids, flags, capacity, num_ids, prefix, next_use,
           position, category, num_categories, cost) -> hits

position: block index within its request (int32[n]); category: workload x
turn index per access (int32[n], 0..num_categories-1; BlockTrace.categories);
cost: recompute cost of each access's block (float64[n]; simulate.py's
`recompute_cost`, from the cost model when the caller gives one). `simulate.replay_hit_mask` is the one place that builds
these arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from prefix_study.registry import POLICY_REGISTRY

Kernel = Callable[..., object]


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    kernel: Kernel
    # Used instead of `kernel` under prefix semantics when the policy's
    # behaviour there differs from "same updates, prefix hit counting".
    prefix_kernel: Kernel | None = None
    needs_next_use: bool = False
    # Kernel takes (position, category, num_categories, cost) after next_use.
    needs_context: bool = False


POLICIES: dict[str, Policy] = {}


def register_policy(
    name: str,
    description: str,
    *,
    prefix_kernel: Kernel | None = None,
    needs_next_use: bool = False,
    needs_context: bool = False,
) -> Callable[[Kernel], Kernel]:
    """Decorator: register a kernel under `name`."""

    def wrap(kernel: Kernel) -> Kernel:
        if name in POLICIES:
            raise ValueError(f"policy {name!r} registered twice")
        POLICIES[name] = Policy(name, description, kernel, prefix_kernel, needs_next_use, needs_context)
        return kernel

    return wrap


def get_policy(name: str) -> Policy:
    """The policy `name`, importing its kernel module on first use."""
    if name not in POLICIES:
        POLICY_REGISTRY.load(name)
    return POLICIES[name]


def policy_names() -> list[str]:
    """Names of all policies, read from the kernel files without importing them."""
    return sorted(POLICY_REGISTRY.names())

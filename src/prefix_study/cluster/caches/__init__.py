"""Replica cache registry: one incremental cache per online eviction policy.

A replica's cache must answer two questions between requests: how many
leading blocks of a request it holds (what a precise router sees through KV
events: `overlap`) and what happens when it serves one (hits, then
insertions and evictions: `serve`). The replay kernels (replay/kernels/)
answer the second for a whole trace at once; these classes do the same one
request at a time, so that routing can depend on the caches. Each is tested
to equal its kernel's `prefix` replay (`replay/simulate.py:replay_hit_mask`)
hit for hit on random traces (tests/test_cluster_caches.py), so a cluster of
one replica reproduces the single-instance `prefix` replay exactly.

One file per policy, registered with `@register_cache(<policy name>)` under
the name the replay registry (replay/policies.py) gives the kernel. Every
online policy has one; `belady` (and any policy that needs next-use
information) does not: it needs the replica's future accesses, which depend
on routing decisions not yet made. `cluster.policy` is checked against
`cache_names()` by config validation.
"""

from __future__ import annotations

from typing import Callable

from prefix_study.cluster.caches._base import NO_CONTEXT, BlockStateCache, CacheContext, ReplicaCache
from prefix_study.registry import CACHE_REGISTRY, POLICY_REGISTRY

CACHES: dict[str, type[ReplicaCache]] = {}


def register_cache(name: str) -> Callable[[type[ReplicaCache]], type[ReplicaCache]]:
    """Class decorator: the incremental cache of the replay policy `name`."""

    def wrap(cls: type[ReplicaCache]) -> type[ReplicaCache]:
        if name in CACHES:
            raise ValueError(f"cluster cache {name!r} registered twice")
        CACHES[name] = cls
        return cls

    return wrap


def cache_names() -> list[str]:
    """Policies a replica can run (the values `cluster.policy` accepts), read
    from the cache files without importing them."""
    return sorted(CACHE_REGISTRY.names())


def unsupported_reason(policy: str) -> str | None:
    """Why a registered replay policy has no cluster cache (None if it has one
    or is not a registered policy)."""
    if policy in cache_names() or policy not in POLICY_REGISTRY.names():
        return None
    from prefix_study.replay.policies import get_policy

    if get_policy(policy).needs_next_use:
        return (f"{policy} is offline: it evicts by each block's next use, but a replica's future "
                "accesses depend on routing decisions not yet made")
    return f"{policy} has no incremental cluster cache yet (src/prefix_study/cluster/caches/)"


def make_cache(policy: str, capacity: int, context: CacheContext = NO_CONTEXT) -> ReplicaCache:
    """An empty cache of `capacity` blocks; context: what context policies
    (wa_prob, cost_lru) need (CacheContext)."""
    if policy not in cache_names():
        raise KeyError(f"cluster.policy={policy!r}: the cluster supports {cache_names()}")
    if policy not in CACHES:
        CACHE_REGISTRY.load(policy)
    return CACHES[policy](int(capacity), context)


__all__ = ["CACHES", "NO_CONTEXT", "BlockStateCache", "CacheContext", "ReplicaCache", "cache_names", "make_cache",
           "register_cache", "unsupported_reason"]

"""Router registry: one file per router, registered with `@register_router`.

A router picks the replica of each request in arrival order, in numba
(`_base.Router` has the interface). It sees the cluster at the request's
arrival time (replica queues, and for `precise` prefix-aware routers the
replicas' caches exactly, as KV events would show them) and the request
(blocks, prompt tokens, session key). Prefix-aware routers also have an
`approximate` variant that sees only its own index of what it routed where
(cluster/approx_index.py).
"""

from __future__ import annotations

from typing import Callable

from prefix_study.cluster.routers._base import VARIANTS, Router
from prefix_study.registry import ROUTER_REGISTRY

ROUTERS: dict[str, type[Router]] = {}


def register_router(name: str) -> Callable[[type[Router]], type[Router]]:
    def wrap(cls: type[Router]) -> type[Router]:
        if name in ROUTERS:
            raise ValueError(f"router {name!r} registered twice")
        cls.name = name
        ROUTERS[name] = cls
        return cls

    return wrap


def router_names() -> list[str]:
    """Names of all routers, read from the router files without importing them."""
    return sorted(ROUTER_REGISTRY.names())


def get_router(name: str) -> type[Router]:
    """The router `name`, importing its module on first use."""
    if name not in ROUTERS:
        ROUTER_REGISTRY.load(name)
    return ROUTERS[name]


def router_labels(routers: list[str], variants: list[str]) -> list[tuple[str, str | None]]:
    """(router, variant) pairs of a sweep: basic routers once, prefix-aware
    ones once per variant."""
    out: list[tuple[str, str | None]] = []
    for name in routers:
        if get_router(name).prefix_aware:
            out += [(name, v) for v in variants]
        else:
            out.append((name, None))
    return out


__all__ = ["ROUTERS", "VARIANTS", "Router", "get_router", "register_router", "router_labels", "router_names"]

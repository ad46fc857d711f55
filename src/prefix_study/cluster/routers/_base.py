"""The router interface."""

from __future__ import annotations

from typing import Any, Callable, Mapping

VARIANTS = ("precise", "approximate")


class Router:
    """A router is its parameters (this class, in Python) and two numba
    functions over a tuple of arrays, its state (`state`), that the
    simulation (cluster/simulate.py) calls once per request:

    `choose(state, queues, exact, sizes, i, now) -> (replica, overrode)`:
    queues is the replicas' queue state (cluster/queue.py: read it through
    its inline accessors), exact the leading prompt blocks of request i each
    replica caches now (what KV events show a `precise` router), sizes the
    blocks each replica caches. overrode is 1
    when a prefix-aware router sent the request away from the replica with
    the longest prefix match in its own view (a longer match existed), i.e.
    it traded cache affinity for load, 0 if not, -1 for routers without
    affinity.
    `routed(state, i, replica, now)`: request i was placed (None: nothing
    to record).
    """

    name = ""
    prefix_aware = False
    choose: Callable = None  # type: ignore[assignment]
    routed: Callable | None = None

    def __init__(self, params: Mapping[str, Any], num_replicas: int, *, seed: int = 0,
                 variant: str | None = None, capacity_blocks: int = 0, block_size: int = 1):
        if self.prefix_aware and variant not in VARIANTS:
            raise ValueError(f"router {self.name!r} needs a variant from {list(VARIANTS)}, got {variant!r}")
        self.params = dict(params)
        self.n = int(num_replicas)
        self.variant = variant if self.prefix_aware else None
        self.capacity_blocks = int(capacity_blocks)
        self.block_size = int(block_size)
        self.seed = int(seed)

    @property
    def label(self) -> str:
        return f"{self.name}/{self.variant}" if self.variant else self.name

    def state(self, requests: Any) -> tuple:
        """The numba state for routing `requests` (cluster/requests.py:ClusterRequests)."""
        raise NotImplementedError

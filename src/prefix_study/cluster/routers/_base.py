"""The router interface."""

from __future__ import annotations

import random
from typing import Any, Mapping

VARIANTS = ("precise", "approximate")


class Router:
    """Subclasses set `prefix_aware` and implement `choose`.

    `choose(i, cluster)` returns (replica, overrode): overrode is True when a
    prefix-aware router sent the request away from the replica with the
    longest prefix match in its own view (a longer match existed), i.e. it
    traded cache affinity for load; None for routers without affinity.
    `routed(i, replica, cluster)` is called after the request is placed.
    """

    name = ""
    prefix_aware = False

    def __init__(self, params: Mapping[str, Any], num_replicas: int, *, seed: int = 0,
                 variant: str | None = None, capacity_blocks: int = 0, block_size: int = 1):
        if self.prefix_aware and variant not in VARIANTS:
            raise ValueError(f"router {self.name!r} needs a variant from {list(VARIANTS)}, got {variant!r}")
        self.params = dict(params)
        self.n = int(num_replicas)
        self.variant = variant if self.prefix_aware else None
        self.capacity_blocks = int(capacity_blocks)
        self.block_size = int(block_size)
        self.rng = random.Random(f"{self.name}:{seed}")

    @property
    def label(self) -> str:
        return f"{self.name}/{self.variant}" if self.variant else self.name

    def choose(self, i: int, cluster: Any) -> tuple[int, bool | None]:
        """cluster: prefix_study.cluster.simulate.Cluster."""
        raise NotImplementedError

    def routed(self, i: int, replica: int, cluster: Any) -> None:
        pass

    # --- helpers ----------------------------------------------------------
    def argmin_random_ties(self, values: list[float]) -> int:
        best = min(values)
        ties = [r for r, v in enumerate(values) if v == best]
        return ties[0] if len(ties) == 1 else ties[self.rng.randrange(len(ties))]

    def argmax_random_ties(self, values: list[float]) -> int:
        best = max(values)
        ties = [r for r, v in enumerate(values) if v == best]
        return ties[0] if len(ties) == 1 else ties[self.rng.randrange(len(ties))]


def overrode_affinity(overlaps: list[int], chosen: int) -> bool:
    """A longer prefix match than the chosen replica's existed."""
    return overlaps[chosen] < max(overlaps)

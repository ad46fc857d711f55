"""Which engine runs the savings stage prices: facts the Snakefile plans
with, kept apart from the stage (no polars or numpy at parse time, ~0.5 s of
every Snakemake process, cluster jobs' included)."""

from __future__ import annotations

from typing import Any, Sequence


def comparison_block_size(cfg: Any) -> int:
    """The block size of the cost figure and the engine comparison."""
    sizes = sorted(int(b) for b in cfg.engine.block_sizes)
    return int(cfg.mix.block_size) if int(cfg.mix.block_size) in sizes else sizes[0]


def compare_workloads(cfg: Any, engine_workloads: Sequence[str]) -> list[str]:
    """Workloads the engine stage runs again without prefix caching
    (cost.compare_workloads that exist)."""
    return [w for w in cfg.cost.compare_workloads if w in engine_workloads]

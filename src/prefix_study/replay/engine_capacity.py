"""The prefix LRU replay at the engine's own KV capacity, beside the engine.

vLLM keeps one null block out of its pool, so engine capacity C is replay
capacity C - 1; with that, the `prefix` LRU replay reproduces the engine's
`num_cached_tokens` (figure `engine_vs_replay`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import polars as pl

from prefix_study.replay.simulate import replay
from prefix_study.replay.trace import load_block_trace

ENGINE_CAPACITY_SCHEMA = {
    "workload": pl.String,
    "block_size": pl.Int64,
    "engine_capacity_blocks": pl.Int64,
    "capacity_blocks": pl.Int64,
    "accesses": pl.Int64,
    "hits": pl.Int64,
    "hit_rate": pl.Float64,
}


def engine_capacity_table(traces: Mapping[tuple[str, int], str | Path], engine_capacity_blocks: int,
                          policy: str = "lru", semantics: str = "prefix") -> pl.DataFrame:
    """One row per (workload, engine block size): `policy` under `semantics`
    at `engine_capacity_blocks - 1` blocks."""
    capacity = int(engine_capacity_blocks) - 1
    rows = []
    for (workload, block_size) in sorted(traces):
        r = replay(load_block_trace(traces[(workload, block_size)]), policy, capacity, semantics)
        rows.append({"workload": workload, "block_size": int(block_size),
                     "engine_capacity_blocks": int(engine_capacity_blocks), "capacity_blocks": capacity,
                     "accesses": r.accesses, "hits": r.hits, "hit_rate": r.hit_rate})
    return pl.DataFrame(rows, schema=ENGINE_CAPACITY_SCHEMA)

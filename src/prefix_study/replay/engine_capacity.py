"""The prefix LRU replay at the engine's own KV capacity, beside the engine.

vLLM keeps one null block out of its pool, so engine capacity C is replay
capacity C - 1; with that, the `prefix` LRU replay reproduces the engine's
`num_cached_tokens` (table `replay/engine_vs_replay`, figure `engine_vs_replay`).
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


ENGINE_REQUEST_COLUMNS = ["workload", "num_prompt_tokens", "num_cached_tokens", "reuse_fraction"]


def engine_requests(paths: Mapping[tuple[str, int], str | Path]) -> pl.DataFrame:
    """The engine's per-request records of every (workload, block size) run."""
    frames = [pl.read_parquet(paths[key], columns=ENGINE_REQUEST_COLUMNS)
              .with_columns(pl.lit(key[1], dtype=pl.Int64).alias("block_size")) for key in sorted(paths)]
    return pl.concat(frames)


def engine_vs_replay(engine_requests: pl.DataFrame, replay: pl.DataFrame) -> pl.DataFrame:
    """Per workload x block size: engine_hit_rate, replay_hit_rate (tokens).

    engine_requests: engine per-request records (workload, block_size,
    num_prompt_tokens, num_cached_tokens); replay: prefix-replay rows
    (workload, block_size, hits), e.g. `engine_capacity_table` (the engine
    capacity minus vLLM's null block).
    """
    eng = engine_requests.group_by("workload", "block_size").agg(
        pl.col("num_prompt_tokens").sum().alias("prompt_tokens"),
        pl.col("num_cached_tokens").sum().alias("engine_cached_tokens"),
        pl.col("reuse_fraction").mean().alias("engine_mean_reuse_fraction")
        if "reuse_fraction" in engine_requests.columns else pl.lit(None, dtype=pl.Float64).alias("engine_mean_reuse_fraction"),
    )
    rep = replay.select("workload", "block_size", "hits")
    return (
        eng.join(rep, on=["workload", "block_size"], how="inner")
        .with_columns(
            (pl.col("engine_cached_tokens") / pl.col("prompt_tokens")).alias("engine_hit_rate"),
            (pl.col("hits") * pl.col("block_size") / pl.col("prompt_tokens")).alias("replay_hit_rate"),
        )
        .sort("workload", "block_size")
    )

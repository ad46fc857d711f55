"""Figures stage (rule `figures`): every plot of a run, from the stage tables,
and the engine-vs-replay table. It replays nothing itself: the prefix LRU
replay at the engine's capacity comes from `replay/engine_capacity.parquet`."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import polars as pl

from prefix_study.figures.curves import plot_hit_rate_curves
from prefix_study.figures.engine import engine_vs_replay, plot_engine_capacity, plot_engine_vs_replay
from prefix_study.figures.hit_rates import plot_hit_rate_vs_capacity
from prefix_study.figures.mixed import plot_mixed_comparison
from prefix_study.figures.reuse import plot_reuse_cdfs
from prefix_study.io import markdown_table, write_parquet, write_text

ENGINE_REQUEST_COLUMNS = ["workload", "num_prompt_tokens", "num_cached_tokens", "reuse_fraction"]


def engine_requests(paths: Mapping[tuple[str, int], str | Path]) -> pl.DataFrame:
    """The engine's per-request records of every (workload, block size) run."""
    frames = [pl.read_parquet(paths[key], columns=ENGINE_REQUEST_COLUMNS)
              .with_columns(pl.lit(key[1], dtype=pl.Int64).alias("block_size")) for key in sorted(paths)]
    return pl.concat(frames)


def run(reuse_cdfs: str | Path, reuse_summary: str | Path, hit_rates: str | Path, mixed: str | Path,
        engine_capacity: str | Path, engine_requests_paths: Mapping[tuple[str, int], str | Path],
        out_dir: str | Path, curves: str | Path | None = None,
        engine_sweep: str | Path | None = None) -> pl.DataFrame:
    """Write `<name>.png` + `.svg` for every figure and `engine_vs_replay.{parquet,md}`.

    engine_requests_paths: {(workload, engine block size): engine requests.parquet};
    curves: `replay/curves.parquet` (the hit_rate_curves figure);
    engine_sweep: `replay/engine_sweep.parquet` (the engine_capacity figure).
    """
    out = Path(out_dir)
    plot_reuse_cdfs(pl.read_parquet(reuse_cdfs), out / "reuse_cdfs")
    plot_hit_rate_vs_capacity(pl.read_parquet(hit_rates), out / "hit_rate_vs_capacity",
                              reuse_summary=pl.read_parquet(reuse_summary))
    if curves is not None:
        plot_hit_rate_curves(pl.read_parquet(curves), out / "hit_rate_curves",
                             reuse_summary=pl.read_parquet(reuse_summary))
    plot_mixed_comparison(pl.read_parquet(mixed), out / "mixed_comparison")
    if engine_sweep is not None:
        plot_engine_capacity(pl.read_parquet(engine_sweep), out / "engine_capacity")
    requests = engine_requests(engine_requests_paths)
    replays = pl.read_parquet(engine_capacity)
    plot_engine_vs_replay(requests, replays, out / "engine_vs_replay")
    table = engine_vs_replay(requests, replays)
    write_parquet(table, out / "engine_vs_replay.parquet")
    capacities = sorted(replays["engine_capacity_blocks"].unique().to_list())
    write_text("# Engine vs prefix replay\n\nToken hit rates: vLLM's `num_cached_tokens` / prompt "
               f"tokens, and the prefix-semantics LRU replay at the engine capacity "
               f"({', '.join(map(str, capacities))} blocks) x block size / prompt tokens.\n\n"
               + markdown_table(table), out / "engine_vs_replay.md")
    return table

"""Figures stage: every plot of a run, from the stage tables."""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from prefix_study.figures import (
    engine_vs_replay,
    plot_engine_vs_replay,
    plot_hit_rate_vs_capacity,
    plot_mixed_comparison,
    plot_reuse_cdfs,
)
from prefix_study.io import markdown_table, write_parquet, write_text


def engine_capacity_replays(engine_dirs: dict[tuple[str, int], str], traces: dict[tuple[str, int], str],
                            capacity_blocks: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Engine records and the prefix LRU replay at the engine's capacity.

    vLLM keeps one null block out of its pool, so the replay gets one block
    fewer than `num_gpu_blocks_override`.
    """
    from prefix_study.replay.simulate import replay
    from prefix_study.replay.trace import load_block_trace

    requests, rows = [], []
    for (workload, bs), engine_dir in sorted(engine_dirs.items()):
        req = pl.read_parquet(Path(engine_dir) / "requests.parquet",
                              columns=["workload", "num_prompt_tokens", "num_cached_tokens", "reuse_fraction"])
        requests.append(req.with_columns(pl.lit(bs, dtype=pl.Int64).alias("block_size")))
        r = replay(load_block_trace(traces[(workload, bs)]), "lru", capacity_blocks - 1, "prefix")
        rows.append({"workload": workload, "block_size": bs, "hits": r.hits, "accesses": r.accesses})
    return pl.concat(requests), pl.DataFrame(rows)


def write_figures(args: argparse.Namespace) -> None:
    from prefix_study.config import load_config
    from prefix_study.stages import parse_pairs

    cfg = load_config(args.config)
    out = Path(args.out_dir)
    plot_reuse_cdfs(pl.read_parquet(args.reuse_cdfs), out / "reuse_cdfs")
    plot_hit_rate_vs_capacity(pl.read_parquet(args.hit_rates), out / "hit_rate_vs_capacity",
                              reuse_summary=pl.read_parquet(args.reuse_summary))
    plot_mixed_comparison(pl.read_parquet(args.mixed), out / "mixed_comparison")
    engine_dirs, traces = parse_pairs(args.engine), parse_pairs(args.trace)
    requests, replays = engine_capacity_replays(engine_dirs, traces, int(cfg.engine.capacity_blocks))
    plot_engine_vs_replay(requests, replays, out / "engine_vs_replay")
    table = engine_vs_replay(requests, replays)
    write_parquet(table, out / "engine_vs_replay.parquet")
    write_text("# Engine vs prefix replay\n\nToken hit rates: vLLM's `num_cached_tokens` / prompt "
               f"tokens, and the prefix-semantics LRU replay at the engine capacity "
               f"({cfg.engine.capacity_blocks} blocks) x block size / prompt tokens.\n\n"
               + markdown_table(table), out / "engine_vs_replay.md")

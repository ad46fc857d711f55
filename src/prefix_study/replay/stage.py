"""Replay stage (rule `replay`): the sweep's hit rates, the hit-rate curves,
the prefix LRU replay at the engine's capacity that the figures set beside
the engine, and every engine run beside its batched and sequential replays."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import polars as pl

from prefix_study.config.schema import SweepConfig
from prefix_study.cost.model import CostModel
from prefix_study.cost.profiles import ModelProfile
from prefix_study.io import write_parquet, write_text
from prefix_study.replay.curves import write_curves
from prefix_study.replay.engine_capacity import engine_capacity_table
from prefix_study.replay.engine_sweep import EngineRunFiles, engine_sweep_markdown, engine_sweep_table
from prefix_study.replay.sweep import write_hit_rates


def run(traces: Mapping[tuple[str, int], str | Path], sweep_cfg: SweepConfig, out: str | Path,
        md: str | Path, engine_traces: Mapping[tuple[str, int], str | Path],
        engine_capacity_blocks: int, engine_capacity_out: str | Path,
        model: ModelProfile | None = None, curves_out: str | Path | None = None,
        cost_model: CostModel | None = None, engine_runs: Sequence[EngineRunFiles] = (),
        engine_sweep_out: str | Path | None = None, engine_sweep_md: str | Path | None = None) -> pl.DataFrame:
    """traces: {(workload, block_size): path} of the sweep; engine_traces: the
    same at the engine's block sizes. Writes `replay/hit_rates.{parquet,md}`,
    `replay/engine_capacity.parquet` and (curves_out) `replay/curves.parquet`.
    model: the named model whose KV bytes turn capacities into GiB
    (`capacity_gib`) and GiB capacities into blocks. cost_model (the config's
    model, hardware and cost sections): recompute costs of cost-aware
    policies (cost_lru; simulate.recompute_cost), else a position-linear
    stand-in. engine_runs: every engine run, compared with its batched and
    sequential replays into `replay/engine_sweep.{parquet,md}`
    (replay/engine_sweep.py)."""
    table = write_hit_rates(traces, sweep_cfg, out, md, model, cost_model)
    if curves_out is not None:
        write_curves(traces, sweep_cfg, curves_out, table, cost_model)
    write_parquet(engine_capacity_table(engine_traces, engine_capacity_blocks), engine_capacity_out)
    if engine_sweep_out is not None:
        sweep = engine_sweep_table(engine_runs)
        write_parquet(sweep, engine_sweep_out)
        if engine_sweep_md is not None:
            write_text("# Engine vs batched vs sequential replay\n\nToken hit rates per engine run: "
                       "vLLM's `num_cached_tokens`, vLLM's block pool replayed along the engine's "
                       "schedule, and the one-request-at-a-time prefix LRU replay at capacity - 1; "
                       "in brackets the requests whose cached tokens differ from vLLM's (batched, "
                       "sequential) of all requests, and the preempted requests.\n\n"
                       + engine_sweep_markdown(sweep), engine_sweep_md)
    return table

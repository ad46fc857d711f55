"""Replay stage (rule `replay`): the sweep's hit rates, the hit-rate curves,
and the prefix LRU replay at the engine's capacity that the figures set
beside the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import polars as pl

from prefix_study.config.schema import SweepConfig
from prefix_study.cost.model import CostModel
from prefix_study.cost.profiles import ModelProfile
from prefix_study.io import write_parquet
from prefix_study.replay.curves import write_curves
from prefix_study.replay.engine_capacity import engine_capacity_table
from prefix_study.replay.sweep import write_hit_rates


def run(traces: Mapping[tuple[str, int], str | Path], sweep_cfg: SweepConfig, out: str | Path,
        md: str | Path, engine_traces: Mapping[tuple[str, int], str | Path],
        engine_capacity_blocks: int, engine_capacity_out: str | Path,
        model: ModelProfile | None = None, curves_out: str | Path | None = None,
        cost_model: CostModel | None = None) -> pl.DataFrame:
    """traces: {(workload, block_size): path} of the sweep; engine_traces: the
    same at the engine's block sizes. Writes `replay/hit_rates.{parquet,md}`,
    `replay/engine_capacity.parquet` and (curves_out) `replay/curves.parquet`.
    model: the named model whose KV bytes turn capacities into GiB
    (`capacity_gib`) and GiB capacities into blocks. cost_model (the config's
    model, hardware and cost sections): recompute costs of cost-aware
    policies (cost_lru; simulate.recompute_cost), else a position-linear
    stand-in."""
    table = write_hit_rates(traces, sweep_cfg, out, md, model, cost_model)
    if curves_out is not None:
        write_curves(traces, sweep_cfg, curves_out, table, cost_model)
    write_parquet(engine_capacity_table(engine_traces, engine_capacity_blocks), engine_capacity_out)
    return table

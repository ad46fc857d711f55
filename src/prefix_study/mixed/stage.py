"""Mixed stage: interleaved workloads, baselines vs workload-aware LRU (rule `mixed`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import polars as pl

from prefix_study.config.schema import MixConfig, WorkloadConfig
from prefix_study.cost.model import CostModel
from prefix_study.cost.profiles import ModelProfile
from prefix_study.mixed.workload_aware import write_mixed_hit_rates


def run(traces: Mapping[str, str | Path], mix_cfg: MixConfig, workload_cfgs: Mapping[str, WorkloadConfig],
        out: str | Path, md: str | Path, model: ModelProfile | None = None,
        cost_model: CostModel | None = None, per_request_out: str | Path | None = None) -> pl.DataFrame:
    """traces: {workload: trace at mix.block_size}, in the order workloads take
    turns; model: adds capacity_tokens/capacity_gib; cost_model: recompute
    costs of cost-aware baselines (cost_lru). Writes `mixed/hit_rates.{parquet,md}`
    and (per_request_out) the per-request hits of its prefix replays."""
    return write_mixed_hit_rates(traces, mix_cfg, workload_cfgs, out, md, model, cost_model, per_request_out)

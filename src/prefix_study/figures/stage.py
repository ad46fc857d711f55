"""Figures stage (rule `figures`): every plot of a run, drawn from the tables
the other stages wrote. It computes no table and replays nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from prefix_study.figures.cluster import plot_cluster_scaling
from prefix_study.figures.curves import plot_hit_rate_curves
from prefix_study.figures.engine import plot_engine_capacity, plot_engine_vs_replay
from prefix_study.figures.hit_rates import plot_hit_rate_vs_capacity
from prefix_study.figures.mixed import plot_mixed_comparison
from prefix_study.figures.reuse import plot_reuse_cdfs
from prefix_study.figures.savings import plot_cost_savings, plot_hit_rate_vs_memory, plot_ttft_prefix_caching
from prefix_study.figures.tiers import plot_tier_tokens, plot_tier_ttft


@dataclass(frozen=True)
class FigureInputs:
    """The tables the figures are drawn from (the rule's named inputs)."""

    reuse_cdfs: str | Path          # stats/reuse_cdfs.parquet
    reuse_summary: str | Path       # stats/reuse_summary.parquet
    hit_rates: str | Path           # replay/hit_rates.parquet
    curves: str | Path              # replay/curves.parquet
    engine_vs_replay: str | Path    # replay/engine_vs_replay.parquet
    engine_sweep: str | Path        # replay/engine_sweep.parquet
    mixed: str | Path               # mixed/hit_rates.parquet
    savings: str | Path             # savings/savings.parquet
    cluster: str | Path             # cluster/cluster.parquet
    engine_ttft: str | Path | None = None  # savings/engine_ttft.parquet (engine.clock=cost_model)
    tiers: str | Path | None = None        # tiers/tiers.parquet (a tier below GPU memory)


def run(inputs: FigureInputs, cfg: Any, out_dir: str | Path) -> list[Path]:
    """Write `<name>.png` + `.svg` for every figure (report.captions.FIGURES).

    cfg: the names in the savings figures' titles (model, hardware) and the
    block size of the cost figure (savings.plan.comparison_block_size)."""
    from prefix_study.savings.plan import comparison_block_size

    out = Path(out_dir)
    read = pl.read_parquet
    summary = read(inputs.reuse_summary)
    model, hardware = str(cfg.model.name), str(cfg.hardware.name)
    hits = read(inputs.hit_rates)
    files = plot_reuse_cdfs(read(inputs.reuse_cdfs), out / "reuse_cdfs")
    files += plot_hit_rate_vs_capacity(hits, out / "hit_rate_vs_capacity", reuse_summary=summary)
    files += plot_hit_rate_curves(read(inputs.curves), out / "hit_rate_curves", reuse_summary=summary)
    files += plot_mixed_comparison(read(inputs.mixed), out / "mixed_comparison")
    files += plot_engine_capacity(read(inputs.engine_sweep), out / "engine_capacity")
    files += plot_engine_vs_replay(read(inputs.engine_vs_replay), out / "engine_vs_replay")
    files += plot_hit_rate_vs_memory(hits, out / "hit_rate_vs_memory", model)
    files += plot_cost_savings(read(inputs.savings), out / "cost_savings", comparison_block_size(cfg), model,
                               hardware)
    files += plot_cluster_scaling(read(inputs.cluster), out / "cluster_scaling")
    if inputs.engine_ttft is not None:
        files += plot_ttft_prefix_caching(read(inputs.engine_ttft), out / "ttft_prefix_caching", model, hardware)
    if inputs.tiers is not None:
        tiers = read(inputs.tiers)
        files += plot_tier_tokens(tiers, out / "tier_tokens")
        files += plot_tier_ttft(tiers, out / "tier_ttft")
    return files

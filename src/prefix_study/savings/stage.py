"""Savings stage (rules `savings`, `savings_engine`): block sizes at equal memory,
what each hit buys, and (under `engine.clock=cost_model`) engine TTFT with
vs without prefix caching."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl
from tqdm import tqdm

from prefix_study.cost.model import CostModel
from prefix_study.io import markdown_table, write_parquet, write_text
from prefix_study.savings.equal_memory import equal_memory_markdown, equal_memory_table
from prefix_study.savings.requests import (
    SEMANTICS,
    load_trace_frame,
    savings_table,
    trace_savings_rows,
    workload_prompt_tokens,
)


def comparison_block_size(cfg: Any) -> int:
    """The block size of the cost figure and the engine comparison."""
    sizes = sorted(int(b) for b in cfg.engine.block_sizes)
    return int(cfg.mix.block_size) if int(cfg.mix.block_size) in sizes else sizes[0]


def compare_workloads(cfg: Any, engine_workloads: Sequence[str]) -> list[str]:
    """Workloads run again without prefix caching (cost.compare_workloads that exist)."""
    return [w for w in cfg.cost.compare_workloads if w in engine_workloads]


def replay_savings(trace_paths: Mapping[tuple[str, int], str], sweep_cfg: Any, prompts: pl.DataFrame,
                   cost: CostModel) -> list[dict[str, Any]]:
    from prefix_study.replay.sweep import sweep_capacity_blocks

    rows = []
    for (workload, bs) in tqdm(sorted(trace_paths), desc="savings: replays", unit="trace", mininterval=0.5):
        frame = load_trace_frame(trace_paths[(workload, bs)])
        rows += trace_savings_rows(frame, bs, list(sweep_cfg.policies),
                                   sweep_capacity_blocks(sweep_cfg, bs, cost.model), prompts, cost)
    return rows


def mixed_savings(trace_paths: Mapping[str, str], mix_cfg: Any, mixed_table: pl.DataFrame,
                  prompts: pl.DataFrame, cost: CostModel) -> list[dict[str, Any]]:
    """The interleaved mix under each baseline and WA-LRU (its cache-friendly
    set per capacity as chosen by the mixed stage)."""
    from prefix_study.mixed.interleave import interleave_traces
    from prefix_study.mixed.workload_aware import WA_POLICY, wa_lru_hit_mask
    from prefix_study.replay.simulate import replay_hit_mask

    if not trace_paths or mixed_table.height == 0 or SEMANTICS not in set(mixed_table["semantics"].to_list()):
        return []
    frames = {w: load_trace_frame(p, w) for w, p in trace_paths.items()}
    frame = interleave_traces(frames, str(mix_cfg.pattern), int(mix_cfg.burst))
    sel = mixed_table.filter(pl.col("semantics") == SEMANTICS)
    friendly = {int(c): [w for w in f.split(",") if w]
                for c, f in sel.select("capacity_blocks", "friendly_workloads").unique().iter_rows()}

    def hit_mask(trace, policy: str, cap: int) -> np.ndarray:
        if policy == WA_POLICY:
            return wa_lru_hit_mask(trace, friendly[cap], cap, SEMANTICS)
        return replay_hit_mask(trace, policy, cap, SEMANTICS, cost, int(mix_cfg.block_size))

    policies = [*mix_cfg.baselines, WA_POLICY]
    return trace_savings_rows(frame, int(mix_cfg.block_size), policies, sorted(friendly), prompts, cost,
                              scope="mixed", hit_mask=hit_mask)


def savings_markdown(table: pl.DataFrame, cost: CostModel) -> str:
    cols = ["scope", "workload", "block_size", "policy", "capacity_blocks", "capacity_gib", "token_hit_rate",
            "flops_saved_fraction", "prefill_pflop_saved", "ttft_p50_no_cache_s", "ttft_p50_cache_s",
            "ttft_p90_no_cache_s", "ttft_p90_cache_s", "ttft_p99_no_cache_s", "ttft_p99_cache_s"]
    m, h = cost.model, cost.hardware
    return (f"# What a hit buys: {m.name} on {cost.num_gpus} x {h.name} ({cost.precision})\n\n"
            "Per replay (prefix semantics): tokens served from cache, the prefill FLOPs they save "
            "(fraction, and absolute in PFLOP), and the TTFT of each request alone (no queueing) with and without "
            "the cache, p50/p90/p99 over requests, from the roofline cost model "
            "(prefix_study.cost.model). `capacity_gib` is KV memory of the named model.\n\n"
            + markdown_table(table.with_columns((pl.col("prefill_flops_saved") / 1e15).alias("prefill_pflop_saved"))
                             .select([c for c in cols if c in table.columns or c == "prefill_pflop_saved"])))


def engine_ttft_table(cached: Mapping[str, str], uncached: Mapping[str, str]) -> pl.DataFrame:
    """TTFT/queueing/TPOT percentiles of engine runs with and without prefix caching."""
    rows = []
    for on, dirs in ((True, cached), (False, uncached)):
        for workload, d in sorted(dirs.items()):
            r = pl.read_parquet(Path(d) / "requests.parquet")  # with the engine's latency columns
            rows.append({
                "workload": workload, "prefix_caching": on, "requests": r.height,
                "token_hit_rate": float(r["num_cached_tokens"].sum() / max(r["num_prompt_tokens"].sum(), 1)),
                "ttft_p50_s": r["ttft_s"].quantile(0.5, "linear"), "ttft_p99_s": r["ttft_s"].quantile(0.99, "linear"),
                "ttft_mean_s": r["ttft_s"].mean(), "queue_p50_s": r["queue_s"].quantile(0.5, "linear"),
                "queue_p99_s": r["queue_s"].quantile(0.99, "linear"),
                "tpot_p50_s": r["tpot_s"].quantile(0.5, "linear"),
            })
    return pl.DataFrame(rows).sort("workload", "prefix_caching", descending=[False, True]) if rows else \
        pl.DataFrame()


def run(cfg: Any, traces: Mapping[tuple[str, int], str], mixed_traces: Mapping[str, str],
        workloads: Mapping[str, str], hit_rates: str, mixed: str, out_dir: str,
        engine: Mapping[str, str] | None = None, engine_no_cache: Mapping[str, str] | None = None) -> None:
    """Write savings.{parquet,md}, equal_memory.{parquet,md}, the figures and,
    with engine runs given, engine_ttft.{parquet,md} and its figure."""
    from prefix_study.figures.savings import plot_cost_savings, plot_hit_rate_vs_memory, plot_ttft_prefix_caching

    out = Path(out_dir)
    cost = CostModel.from_config(cfg)
    prompts = workload_prompt_tokens(workloads)
    rows = replay_savings(traces, cfg.sweep, prompts, cost)
    rows += mixed_savings(mixed_traces, cfg.mix, pl.read_parquet(mixed), prompts, cost)
    table = savings_table(rows, cost)
    write_parquet(table, out / "savings.parquet")
    write_text(savings_markdown(table, cost), out / "savings.md")

    hits = pl.read_parquet(hit_rates)
    equal = equal_memory_table(hits)
    write_parquet(equal, out / "equal_memory.parquet")
    write_text(equal_memory_markdown(equal, cost.model.name), out / "equal_memory.md")

    plot_hit_rate_vs_memory(hits, out / "hit_rate_vs_memory", cost.model.name)
    plot_cost_savings(table, out / "cost_savings", comparison_block_size(cfg), cost.model.name, cost.hardware.name)
    if engine and engine_no_cache:
        ttft = engine_ttft_table(engine, engine_no_cache)
        write_parquet(ttft, out / "engine_ttft.parquet")
        write_text(f"# Engine TTFT with vs without prefix caching\n\nvLLM's scheduler (batching, chunked "
                   f"prefill, preemption) with each step timed by the cost model: {cost.model.name} on "
                   f"{cost.num_gpus} x {cost.hardware.name} ({cost.precision}). TTFT includes queueing.\n\n"
                   + markdown_table(ttft), out / "engine_ttft.md")
        plot_ttft_prefix_caching(ttft, out / "ttft_prefix_caching", cost.model.name, cost.hardware.name)


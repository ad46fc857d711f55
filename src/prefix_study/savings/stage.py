"""Savings stage (rule `savings`): block sizes at equal memory, what each hit
buys, and (under `engine.clock=cost_model`) engine TTFT with vs without
prefix caching. It prices what earlier stages wrote: the per-request replay
hits of the replay and mixed stages, and the engine stage's runs with and
without prefix caching (rule `engine_no_prefix_caching`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import polars as pl

from prefix_study.cost.model import CostModel
from prefix_study.io import markdown_table, write_parquet, write_text
from prefix_study.savings.equal_memory import equal_memory_markdown, equal_memory_table
from prefix_study.savings.requests import priced_rows, savings_table, workload_prompt_tokens


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


def run(cfg: Any, streams: Mapping[str, str | Path], hit_rates: str | Path, per_request: str | Path,
        mixed_per_request: str | Path, out_dir: str | Path, engine: Mapping[str, str | Path] | None = None,
        engine_no_cache: Mapping[str, str | Path] | None = None) -> pl.DataFrame:
    """Write savings.{parquet,md}, equal_memory.{parquet,md} and, with engine
    runs given, engine_ttft.{parquet,md}. It replays nothing: it prices the
    per-request hits the replay and mixed stages wrote (per_request,
    mixed_per_request), with the prompt lengths of the workload streams.
    engine/engine_no_cache: {workload: engine run directory} with prefix
    caching on and off (the engine stage's runs)."""
    out = Path(out_dir)
    cost = CostModel.from_config(cfg)
    prompts = workload_prompt_tokens(streams)
    rows = priced_rows(pl.read_parquet(per_request), prompts, cost, "replay",
                       ("workload", "block_size", "policy", "capacity_blocks"))
    rows += priced_rows(pl.read_parquet(mixed_per_request), prompts, cost, "mixed",
                        ("block_size", "policy", "capacity_blocks"))
    table = savings_table(rows, cost)
    write_parquet(table, out / "savings.parquet")
    write_text(savings_markdown(table, cost), out / "savings.md")

    equal = equal_memory_table(pl.read_parquet(hit_rates))
    write_parquet(equal, out / "equal_memory.parquet")
    write_text(equal_memory_markdown(equal, cost.model.name), out / "equal_memory.md")
    if engine and engine_no_cache:
        ttft = engine_ttft_table(engine, engine_no_cache)
        write_parquet(ttft, out / "engine_ttft.parquet")
        write_text(f"# Engine TTFT with vs without prefix caching\n\nvLLM's scheduler (batching, chunked "
                   f"prefill, preemption) with each step timed by the cost model: {cost.model.name} on "
                   f"{cost.num_gpus} x {cost.hardware.name} ({cost.precision}). TTFT includes queueing.\n\n"
                   + markdown_table(ttft), out / "engine_ttft.md")
    return table

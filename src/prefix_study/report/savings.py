"""The savings stage's part of the run index: the equal-memory finding, what
hits buy, and the engine TTFT comparison, with links."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import polars as pl

from prefix_study.savings.equal_memory import equal_memory_finding
from prefix_study.io import markdown_table


def savings_index_lines(paths: Any, rel: Callable[[Path], str]) -> list[str]:
    """Markdown lines for `index.md` (paths: PipelinePaths; rel: link maker)."""
    from prefix_study.report.captions import ENGINE_TTFT_FIGURES, caption
    from prefix_study.savings.plan import comparison_block_size

    cfg = paths.cfg
    lines = [f"## Memory and time ({cfg.model.name} on {cfg.cost.num_gpus} x {cfg.hardware.name}, "
             f"{cfg.cost.precision})", ""]
    equal = paths.savings("equal_memory.parquet")
    if equal.exists():
        lines += ["Block sizes at equal memory (hit rate of LRU, prefix semantics, at token capacities "
                  f"every block size reaches; [table]({rel(paths.savings('equal_memory.md'))})):", "",
                  equal_memory_finding(pl.read_parquet(equal)), ""]
    savings = paths.savings("savings.parquet")
    if savings.exists():
        bs = comparison_block_size(cfg)
        t = pl.read_parquet(savings).filter((pl.col("block_size") == bs) & (pl.col("policy") == "lru"))
        cap = t["capacity_blocks"].max() if t.height else None
        t = t.filter(pl.col("capacity_blocks") == cap).select(
            "scope", "workload", "capacity_gib", "token_hit_rate", "flops_saved_fraction",
            "ttft_p50_no_cache_s", "ttft_p50_cache_s", "ttft_p99_no_cache_s", "ttft_p99_cache_s")
        lines += [f"What hits buy with LRU at {cap} blocks of {bs} tokens (request alone, no queueing; "
                  f"[all replays]({rel(paths.savings('savings.md'))})):", "", markdown_table(t)]
    ttft = paths.savings("engine_ttft.parquet")
    if ttft.exists():
        lines += ["Engine TTFT with vs without prefix caching (engine.clock=cost_model; "
                  f"[table]({rel(paths.savings('engine_ttft.md'))})):", "",
                  markdown_table(pl.read_parquet(ttft)), ""]
    for name, stem in (ENGINE_TTFT_FIGURES if ttft.exists() else {}).items():
        png = paths.figure(name)
        lines += [f"- [{name}]({rel(png)}) ([svg]({rel(png.with_suffix('.svg'))})): {caption(stem)}", "",
                  f"  ![{name}]({rel(png)})", ""]
    return lines

"""What a cache hit buys: prefill FLOPs and time to first token per request.

For each replay (workload x block size x policy x capacity, `prefix`
semantics: vLLM's rule, only the longest cached prefix is served) the
replay and mixed stages write each request's hit blocks
(`per_request.parquet`); a request's cached tokens are its hit blocks x
block size. With P prompt tokens and C cached, the cost
model gives the prefill FLOPs and the TTFT of the request alone (no
queueing): `CostModel.ttft_s(P, C)` against `ttft_s(P, 0)` without a cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import polars as pl

from prefix_study.cost.capacity import with_capacity_columns
from prefix_study.cost.model import CostModel

#: Only vLLM's rule turns hits into skipped prefill.
SEMANTICS = "prefix"
PERCENTILES = (50, 90, 99)

SAVINGS_SCHEMA = {
    "scope": pl.String,           # replay (one workload) or mixed (the interleaved mix)
    "workload": pl.String,        # for mixed: one of its workloads, or "all"
    "block_size": pl.Int64,
    "policy": pl.String,
    "capacity_blocks": pl.Int64,
    "requests": pl.Int64,
    "prompt_tokens": pl.Int64,
    "cached_tokens": pl.Int64,
    "token_hit_rate": pl.Float64,
    "prefill_flops": pl.Float64,        # without a cache
    "prefill_flops_saved": pl.Float64,
    "flops_saved_fraction": pl.Float64,
    **{f"ttft_p{q}_no_cache_s": pl.Float64 for q in PERCENTILES},
    **{f"ttft_p{q}_cache_s": pl.Float64 for q in PERCENTILES},
    "ttft_mean_no_cache_s": pl.Float64,
    "ttft_mean_cache_s": pl.Float64,
    "ttft_mean_saved_s": pl.Float64,
}


def summarize(prompt: np.ndarray, cached: np.ndarray, cost: CostModel) -> dict[str, Any]:
    """FLOPs and TTFT percentiles over requests with `prompt` and `cached` tokens."""
    flops_full = cost.prefill_flops(prompt, 0)
    flops_cached = cost.prefill_flops(prompt, cached)
    ttft_full = cost.ttft_s(prompt, 0)
    ttft_cached = cost.ttft_s(prompt, cached)
    total = float(flops_full.sum())
    saved = total - float(flops_cached.sum())
    row: dict[str, Any] = {
        "requests": int(prompt.size), "prompt_tokens": int(prompt.sum()), "cached_tokens": int(cached.sum()),
        "token_hit_rate": float(cached.sum() / prompt.sum()) if prompt.sum() else 0.0,
        "prefill_flops": total, "prefill_flops_saved": saved,
        "flops_saved_fraction": saved / total if total else 0.0,
    }
    for q in PERCENTILES:
        row[f"ttft_p{q}_no_cache_s"] = float(np.percentile(ttft_full, q)) if prompt.size else None
        row[f"ttft_p{q}_cache_s"] = float(np.percentile(ttft_cached, q)) if prompt.size else None
    row["ttft_mean_no_cache_s"] = float(ttft_full.mean()) if prompt.size else None
    row["ttft_mean_cache_s"] = float(ttft_cached.mean()) if prompt.size else None
    row["ttft_mean_saved_s"] = float((ttft_full - ttft_cached).mean()) if prompt.size else None
    return row


def prompt_lengths(requests: pl.DataFrame, prompt_tokens: pl.DataFrame, block_size: int,
                   lookup_blocks: np.ndarray) -> np.ndarray:
    """Prompt tokens per request (trace order) from the workload streams
    (workload, request_id, prompt_tokens). Requests without a stream (external
    traces) are taken as their looked-up blocks plus one token."""
    joined = requests.with_row_index("_i").join(prompt_tokens, on=["workload", "request_id"], how="left") \
        .sort("_i")["prompt_tokens"]
    fallback = lookup_blocks * block_size + 1
    return np.where(joined.is_null().to_numpy(), fallback, joined.fill_null(0).to_numpy()).astype(np.int64)


def priced_rows(per_request: pl.DataFrame, prompts: pl.DataFrame, cost: CostModel, scope: str,
                by: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of SAVINGS_SCHEMA from per-request replay hits (the replay or
    mixed stage's `per_request.parquet`, one trace's requests in trace order
    per replay). `by`: the columns naming one replay of one trace; within it,
    one row per workload (in order of first request) and `all` when it holds
    several."""
    rows = []
    for key, part in per_request.partition_by(list(by), maintain_order=True, as_dict=True).items():
        block_size = int(part["block_size"][0])
        lookups = part["lookup_blocks"].to_numpy()
        prompt = prompt_lengths(part.select("workload", "request_id"), prompts, block_size, lookups)
        cached = part["hit_blocks"].to_numpy() * block_size
        workloads = part["workload"].to_numpy()
        names = list(dict.fromkeys(part["workload"].to_list()))
        groups = [(w, workloads == w) for w in names]
        if len(names) > 1:
            groups.append(("all", np.ones(len(workloads), dtype=np.bool_)))
        for name, sel in groups:
            rows.append({"scope": scope, "workload": name, "block_size": block_size,
                         "policy": str(part["policy"][0]), "capacity_blocks": int(part["capacity_blocks"][0]),
                         **summarize(prompt[sel], cached[sel], cost)})
    return rows


def savings_table(rows: list[dict[str, Any]], cost: CostModel) -> pl.DataFrame:
    table = pl.DataFrame(rows, schema=SAVINGS_SCHEMA).sort(
        "scope", "workload", "block_size", "policy", "capacity_blocks")
    return with_capacity_columns(table, cost.model)


def workload_prompt_tokens(paths: Mapping[str, Path | str]) -> pl.DataFrame:
    """(workload, request_id, prompt_tokens) of the workload streams."""
    frames = [pl.read_parquet(p, columns=["workload", "request_id", "prompt_token_ids"])
              .select("workload", "request_id", pl.col("prompt_token_ids").list.len().cast(pl.Int64)
                      .alias("prompt_tokens")) for p in paths.values()]
    if not frames:
        return pl.DataFrame(schema={"workload": pl.String, "request_id": pl.String, "prompt_tokens": pl.Int64})
    return pl.concat(frames)

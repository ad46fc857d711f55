"""What a cache hit buys: prefill FLOPs and time to first token per request.

For each replay (workload x block size x policy x capacity, `prefix`
semantics: vLLM's rule, only the longest cached prefix is served) the
per-access hit flags are grouped by request: a request's cached tokens are
its hit blocks x block size. With P prompt tokens and C cached, the cost
model gives the prefill FLOPs and the TTFT of the request alone (no
queueing): `CostModel.ttft_s(P, C)` against `ttft_s(P, 0)` without a cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import polars as pl

from prefix_study.cost.capacity import with_capacity_columns
from prefix_study.cost.model import CostModel
from prefix_study.replay.simulate import replay_hit_mask
from prefix_study.replay.trace import REPLAY_COLUMNS, REQUEST_START, BlockTrace, encode_trace, read_trace

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


def request_hit_blocks(trace: BlockTrace, hits: np.ndarray) -> np.ndarray:
    """Looked-up hits per request, in trace order (one entry per request)."""
    request = np.cumsum((trace.flags & REQUEST_START) != 0) - 1
    counted = hits & trace.looked_up
    return np.bincount(request, weights=counted, minlength=trace.num_requests).astype(np.int64)


def request_ids(frame: pl.DataFrame, trace: BlockTrace) -> pl.DataFrame:
    """(workload, request_id) of every request, in trace order."""
    first = np.flatnonzero(trace.flags & REQUEST_START)
    return frame.select("workload", "request_id")[first]


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


def trace_savings_rows(frame: pl.DataFrame, block_size: int, policies: Iterable[str],
                       capacities: Iterable[int], prompts: pl.DataFrame, cost: CostModel,
                       scope: str = "replay",
                       hit_mask: Callable[[BlockTrace, str, int], np.ndarray] | None = None,
                       ) -> list[dict[str, Any]]:
    """Rows of SAVINGS_SCHEMA for one trace: per policy x capacity, per
    workload in the trace (and `all` when it holds several). `hit_mask`
    (trace, policy, capacity) -> per-access hits; default: the policy's
    prefix-semantics replay."""
    trace = encode_trace(frame)
    ids = request_ids(frame, trace)
    lookups = request_hit_blocks(trace, np.ones(trace.accesses, dtype=np.bool_))
    prompt = prompt_lengths(ids, prompts, block_size, lookups)
    workloads = ids["workload"].to_numpy()
    names = list(dict.fromkeys(ids["workload"].to_list()))
    groups = [(w, workloads == w) for w in names]
    if len(names) > 1:
        groups.append(("all", np.ones(len(workloads), dtype=np.bool_)))
    rows = []
    for policy in policies:
        for cap in capacities:
            hits = hit_mask(trace, policy, int(cap)) if hit_mask is not None else \
                replay_hit_mask(trace, policy, int(cap), SEMANTICS, cost, int(block_size))
            cached = request_hit_blocks(trace, hits) * int(block_size)
            for name, sel in groups:
                rows.append({"scope": scope, "workload": name, "block_size": int(block_size), "policy": policy,
                             "capacity_blocks": int(cap), **summarize(prompt[sel], cached[sel], cost)})
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


def load_trace_frame(path: Path | str, workload: str | None = None) -> pl.DataFrame:
    frame = read_trace(path, (*REPLAY_COLUMNS, "time_s"))
    return frame if workload is None else frame.with_columns(pl.lit(workload).alias("workload"))

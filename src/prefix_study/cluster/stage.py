"""The cluster stage: every router x replica count x workload, one table.

Entry point `run(...)`, called by workflow/rules/cluster.smk through
`prefix_study.stages.run_job`. Writes `cluster/cluster.parquet` (+ `.md`);
the figures stage draws `cluster_scaling` from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import polars as pl
from omegaconf import OmegaConf
from tqdm import tqdm

from prefix_study.cluster.costs import cost_model
from prefix_study.cluster.requests import ClusterRequests, requests_from_trace
from prefix_study.cluster.routers import router_labels
from prefix_study.cluster.simulate import run_metrics, simulate
from prefix_study.cluster.capacity import capacity_blocks, capacity_error, selected_workloads
from prefix_study.config.schema import EXTERNAL_TRACE_KINDS
from prefix_study.io import markdown_table, write_parquet, write_text
from prefix_study.replay.trace import REPLAY_COLUMNS, read_trace
from prefix_study.traces.formats import external_block_tokens

MIXED = "mixed"

CLUSTER_SCHEMA = {
    "workload": pl.String, "block_size": pl.Int64, "policy": pl.String, "capacity_blocks": pl.Int64,
    "max_batch": pl.Int64, "router": pl.String, "variant": pl.String, "replicas": pl.Int64,
    "requests": pl.Int64, "lookup_blocks": pl.Int64, "hit_blocks": pl.Int64, "hit_rate": pl.Float64,
    "prefill_imbalance": pl.Float64, "ttft_p50_s": pl.Float64, "ttft_p90_s": pl.Float64,
    "ttft_p99_s": pl.Float64, "throughput_tok_s": pl.Float64, "requests_per_s": pl.Float64,
    "affinity_override_rate": pl.Float64, "off_best_prefix_rate": pl.Float64,
}


def cluster_traces(cfg: Any) -> list[tuple[str, int]]:
    """(workload, block size) of every trace the stage reads."""
    out = []
    for w in selected_workloads(cfg):
        kind = cfg.workloads[w].kind
        out.append((w, external_block_tokens(cfg.workloads[w]) if kind in EXTERNAL_TRACE_KINDS
                    else int(cfg.cluster.block_size)))
    return out


def engine_lengths(requests_parquet: Path | str, workload: str) -> pl.DataFrame:
    """Token counts and conversations of an engine run's requests."""
    r = pl.read_parquet(requests_parquet, columns=["request_id", "conversation_id", "num_prompt_tokens",
                                                   "output_token_ids"])
    return r.select(
        "request_id",
        pl.col("num_prompt_tokens").cast(pl.Int64).alias("prompt_tokens"),
        pl.col("output_token_ids").list.len().cast(pl.Int64).alias("output_tokens"),
        (pl.lit(f"{workload}/") + pl.col("conversation_id")).alias("session_id"),
    )


def external_lengths(wl_cfg: Any, workload: str) -> pl.DataFrame:
    """Token counts of an external trace's requests (its JSONL fields)."""
    from prefix_study.config.inputs import project_path
    from prefix_study.traces.importers import read_external_requests

    reqs, _ = read_external_requests(str(wl_cfg.kind), project_path(wl_cfg.trace_path), workload,
                                     wl_cfg.max_requests, bool(wl_cfg.skip_bad_lines))
    return pl.DataFrame({
        "request_id": [r.request_id for r in reqs],
        "prompt_tokens": [r.input_length for r in reqs],
        "output_tokens": [r.output_length for r in reqs],
    }, schema={"request_id": pl.String, "prompt_tokens": pl.Int64, "output_tokens": pl.Int64})


def load_requests(cfg: Any, traces: Mapping[str, Path | str],
                  engine_requests: Mapping[str, Path | str]) -> dict[str, ClusterRequests]:
    """Every workload's requests, plus the mixed trace (engine workloads merged
    by arrival time) when cluster.mixed is set."""
    from prefix_study.mixed.interleave import interleave_traces

    out: dict[str, ClusterRequests] = {}
    frames, lengths = {}, {}
    for w, bs in cluster_traces(cfg):
        frame = read_trace(traces[w], (*REPLAY_COLUMNS, "time_s"))
        wl = cfg.workloads[w]
        if wl.kind in EXTERNAL_TRACE_KINDS:
            length = external_lengths(wl, w)
        else:
            length = engine_lengths(engine_requests[w], w)
            frames[w], lengths[w] = frame, length
        reqs = requests_from_trace(frame, bs, length)
        err = capacity_error(cfg, bs, reqs.max_request_blocks(), f"the longest request of {w}")
        if err:
            raise ValueError(err)
        out[w] = reqs
    if cfg.cluster.mixed and len(frames) > 1:
        merged = interleave_traces(frames, "timestamp")
        out[MIXED] = requests_from_trace(merged, int(cfg.cluster.block_size), pl.concat(lengths.values()))
    return out


def cluster_table(cfg: Any, requests: Mapping[str, ClusterRequests], progress: bool = True) -> pl.DataFrame:
    """One row per workload x router (x variant) x replica count."""
    c = cfg.cluster
    cost = cost_model(cfg)
    labels = router_labels(list(c.routers), list(c.variants))
    params = OmegaConf.to_container(c.router, resolve=True, throw_on_missing=True)
    jobs = [(w, n, r, v) for w in requests for n in sorted(set(c.replicas)) for r, v in labels]
    rows = []
    for w, n, router, variant in tqdm(jobs, desc="cluster", unit="run", disable=not progress):
        reqs = requests[w]
        cap = capacity_blocks(cfg, reqs.block_size)
        run = simulate(reqs, n, router, variant, params.get(router, {}), str(c.policy), cap, cost,
                       int(c.max_batch), seed=int(c.seed))
        rows.append({"workload": w, "block_size": reqs.block_size, "policy": str(c.policy),
                     "capacity_blocks": cap, "max_batch": int(c.max_batch), "router": router,
                     "variant": variant or "", "replicas": n, **run_metrics(run)})
    return pl.DataFrame(rows, schema=CLUSTER_SCHEMA).sort("workload", "router", "variant", "replicas")


def cluster_markdown(table: pl.DataFrame) -> str:
    cols = ["workload", "router", "variant", "replicas", "hit_rate", "prefill_imbalance", "ttft_p50_s",
            "ttft_p90_s", "ttft_p99_s", "throughput_tok_s", "affinity_override_rate", "off_best_prefix_rate"]
    return markdown_table(table.select(cols), float_digits=3)


def run(cfg: Any, traces: Mapping[str, Path | str], engine_requests: Mapping[str, Path | str],
        table_out: Path | str, md_out: Path | str, progress: bool = True) -> pl.DataFrame:
    """Stage entry: cluster.parquet and cluster.md (the figures stage draws
    the scaling figure from the table).

    traces: {workload: trace parquet}; engine_requests: {workload: the engine
    run's requests.parquet} for ShareGPT workloads (token counts, conversations).
    """
    requests = load_requests(cfg, traces, engine_requests)
    table = cluster_table(cfg, requests, progress)
    write_parquet(table, table_out)
    c = cfg.cluster
    write_text(
        "# Cluster: replicas behind a router\n\n"
        f"Per-replica cache: {c.capacity} {c.capacity_unit} ({c.policy} eviction, vLLM prefix semantics), "
        f"max batch {c.max_batch}. hit_rate: hits / looked-up blocks over the cluster; "
        "prefill_imbalance: max / mean prefill tokens per replica; TTFT in seconds from the cost "
        "model; affinity_override_rate: share of requests a prefix-aware router sent away from its "
        "best prefix match; off_best_prefix_rate: share sent where the exact caches held a shorter "
        "prefix than some other replica.\n\n" + cluster_markdown(table),
        md_out)
    return table

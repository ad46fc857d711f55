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
from prefix_study.cluster.capacity import capacity_blocks, capacity_error, cluster_traces
from prefix_study.config.schema import EXTERNAL_TRACE_KINDS
from prefix_study.io import markdown_table, write_parquet, write_text
from prefix_study.replay.trace import REPLAY_COLUMNS, read_trace
from prefix_study.tiers.spec import has_lower_tiers

MIXED = "mixed"

CLUSTER_SCHEMA = {
    "workload": pl.String, "block_size": pl.Int64, "policy": pl.String, "capacity_blocks": pl.Int64,
    "max_batch": pl.Int64, "router": pl.String, "variant": pl.String, "replicas": pl.Int64,
    "requests": pl.Int64, "lookup_blocks": pl.Int64, "hit_blocks": pl.Int64, "hit_rate": pl.Float64,
    "prefill_imbalance": pl.Float64, "ttft_p50_s": pl.Float64, "ttft_p90_s": pl.Float64,
    "ttft_p99_s": pl.Float64, "throughput_tok_s": pl.Float64, "requests_per_s": pl.Float64,
    "affinity_override_rate": pl.Float64, "off_best_prefix_rate": pl.Float64,
}


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


def cluster_table(cfg: Any, requests: Mapping[str, ClusterRequests], progress: bool = True,
                  scope: str | None = None) -> pl.DataFrame:
    """One row per workload x router (x variant) x replica count. With a tier
    below GPU memory (`tiers`) every replica takes the tiers (scope: every
    lower tier forced per_replica or shared, cluster/tiered.py), and the rows
    gain the tokens each tier served (TIERED_SCHEMA)."""
    c = cfg.cluster
    cost = cost_model(cfg)
    labels = router_labels(list(c.routers), list(c.variants))
    params = OmegaConf.to_container(c.router, resolve=True, throw_on_missing=True)
    jobs = [(w, n, r, v) for w in requests for n in sorted(set(c.replicas)) for r, v in labels]
    tiered = has_lower_tiers(cfg.tiers)
    rows = []
    for w, n, router, variant in tqdm(jobs, desc="cluster", unit="run", disable=not progress):
        reqs = requests[w]
        cap = capacity_blocks(cfg, reqs.block_size)
        tiers = cluster_tiers(cfg, reqs.block_size, scope) if tiered else None
        run = simulate(reqs, n, router, variant, params.get(router, {}), str(c.policy), cap, cost,
                       int(c.max_batch), seed=int(c.seed), tiers=tiers)
        rows.append({"workload": w, "block_size": reqs.block_size, "policy": str(c.policy),
                     "capacity_blocks": cap, "max_batch": int(c.max_batch), "router": router,
                     "variant": variant or "", "replicas": n, **run_metrics(run),
                     **(tier_metrics(run, tiers, scope) if tiered else {})})
    schema = {**CLUSTER_SCHEMA, **TIERED_SCHEMA} if tiered else CLUSTER_SCHEMA
    return pl.DataFrame(rows, schema=schema).sort("workload", "router", "variant", "replicas")


#: Columns a cluster with tiers adds: each tier's name and tokens (tier 0: GPU memory), recomputed tokens.
TIERED_SCHEMA = {"tier_scope": pl.String, "gpu_tokens": pl.Int64, "tier1": pl.String, "tier1_tokens": pl.Int64,
                 "tier2": pl.String, "tier2_tokens": pl.Int64, "recomputed_tokens": pl.Int64,
                 "load_s_mean": pl.Float64}


def cluster_tiers(cfg: Any, block_size: int, scope: str | None) -> Any:
    """The tiers config resolved at `block_size` (tiers.spec.Hierarchy), every
    lower tier set to `scope` when one is given."""
    from prefix_study.cluster.tiered import with_scope
    from prefix_study.cost import HardwareProfile, ModelProfile
    from prefix_study.tiers.spec import hierarchy

    h = hierarchy(cfg.tiers, HardwareProfile.from_config(cfg.hardware), ModelProfile.from_config(cfg.model),
                  block_size)
    return h if scope is None else with_scope(h, scope)


def tier_metrics(run: Any, tiers: Any, scope: str | None) -> dict[str, Any]:
    bs = tiers.block_size
    served = run.tier_blocks.sum(axis=0) * bs
    row: dict[str, Any] = {"tier_scope": scope or ",".join(t.scope for t in tiers.lower),
                           "gpu_tokens": int(served[0]),
                           "recomputed_tokens": int(run.lookup_blocks.sum() * bs - served.sum()),
                           "load_s_mean": float(run.load_s.mean()) if run.load_s.size else 0.0}
    for i, t in enumerate(tiers.lower, start=1):
        row |= {f"tier{i}": t.name, f"tier{i}_tokens": int(served[i])}
    return row


def cluster_tiers_markdown(table: pl.DataFrame) -> str:
    cols = ["workload", "router", "variant", "replicas", "tier_scope", "hit_rate", "gpu_tokens", "tier1",
            "tier1_tokens", "tier2", "tier2_tokens", "recomputed_tokens", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s"]
    return ("# Cluster with KV tiers: a shared pool against per-replica tiers of the same total size\n\n"
            "Each replica contributes its tiers' capacity: `per_replica`, every replica has its own tiers; "
            "`shared`, one pool per tier of the replicas' capacities together (Mooncake Store). hit_rate: "
            "blocks served from GPU memory or loaded from a tier / looked-up blocks; TTFT includes load time.\n\n"
            + markdown_table(table.sort("workload", "router", "variant", "replicas", "tier_scope")
                             .select([c for c in cols if c in table.columns]), float_digits=4))


def cluster_markdown(table: pl.DataFrame) -> str:
    cols = ["workload", "router", "variant", "replicas", "hit_rate", "prefill_imbalance", "ttft_p50_s",
            "ttft_p90_s", "ttft_p99_s", "throughput_tok_s", "affinity_override_rate", "off_best_prefix_rate"]
    return markdown_table(table.select(cols), float_digits=3)


def run(cfg: Any, traces: Mapping[str, Path | str], engine_requests: Mapping[str, Path | str],
        table_out: Path | str, md_out: Path | str, progress: bool = True) -> pl.DataFrame:
    """Stage entry: cluster.parquet and cluster.md (the figures stage draws
    the scaling figure from the table); with a tier below GPU memory also
    cluster_tiers.{parquet,md} beside them (shared pool vs per-replica tiers).

    traces: {workload: trace parquet}; engine_requests: {workload: the engine
    run's requests.parquet} for ShareGPT workloads (token counts, conversations).
    """
    requests = load_requests(cfg, traces, engine_requests)
    table = cluster_table(cfg, requests, progress)
    write_parquet(table, table_out)
    if has_lower_tiers(cfg.tiers):
        both = pl.concat([cluster_table(cfg, requests, progress, scope) for scope in ("per_replica", "shared")])
        out = Path(table_out).parent
        write_parquet(both, out / "cluster_tiers.parquet")
        write_text(cluster_tiers_markdown(both), out / "cluster_tiers.md")
    c = cfg.cluster
    write_text(
        "# Cluster: replicas behind a router\n\n"
        f"Per-replica cache: {c.capacity} {c.capacity_unit} ({c.policy} eviction, vLLM prefix semantics), "
        f"max batch {c.max_batch}. hit_rate: hits / looked-up blocks over the cluster; "
        "prefill_imbalance: max / mean prefill tokens per replica; TTFT in seconds from the cost "
        "model; affinity_override_rate: share of requests a prefix-aware router sent away from its "
        "best prefix match; off_best_prefix_rate: share sent where the exact caches held a shorter "
        "prefix than some other replica."
        + (f" Below GPU memory: tiers `{cfg.tiers.name}` (cluster_tiers.md); hit_rate also counts blocks loaded "
           "from them, and TTFT includes load time." if has_lower_tiers(cfg.tiers) else "")
        + "\n\n" + cluster_markdown(table),
        md_out)
    return table

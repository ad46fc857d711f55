"""Engine capacity sweep: what vLLM served at each capacity, beside the replay.

(Library only on this branch: the rule that writes the table and figure from
the `engine_capacity_run` outputs is still to be wired into the replay stage.)

For every engine run (a workload, or the mixed stream, at one block size and
capacity) the run's own block trace (its requests in the order vLLM
scheduled them) is replayed one request at a time with `prefix` LRU at
capacity - 1 (vLLM keeps one null block out of its pool). The table counts
the requests whose replayed cached tokens differ from vLLM's
`num_cached_tokens`: zero without batching, and what batching (concurrent
holders, preemption) changes when the capacity binds.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

TABLE_NAME = "engine_vs_replay"

TABLE_SCHEMA = {
    "run": pl.String, "workload": pl.String, "block_size": pl.Int64, "capacity_blocks": pl.Int64,
    "requests": pl.Int64, "prompt_tokens": pl.Int64, "engine_hit_rate": pl.Float64,
    "replay_hit_rate": pl.Float64, "requests_differ": pl.Int64, "preempted_requests": pl.Int64,
    "preemptions": pl.Int64, "unschedulable": pl.Int64, "evictions": pl.Int64,
}


def run_comparison(run_dir: str | Path) -> pl.DataFrame:
    """Rows per workload tag (and `all` for the mixed run) of one engine run."""
    from prefix_study.replay.per_request import per_request_hits
    from prefix_study.traces.derive import check_engine_consistency, derive_block_trace

    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "run.json").read_text())
    bs, cap = int(meta["block_size"]), int(meta["engine"]["capacity_blocks"])
    requests = pl.read_parquet(run_dir / "requests.parquet")
    evictions = pl.scan_parquet(run_dir / "kv_events.parquet").filter(
        pl.col("event") == "removed").select(pl.len()).collect().item()
    trace = derive_block_trace(requests, bs, meta["none_hash_seed"], engine_block_size=bs,
                               algo=meta["prefix_hash_algo"])
    kv_events = pl.read_parquet(run_dir / "kv_events.parquet")
    check = check_engine_consistency(requests, kv_events, trace, bs)
    if not check["ok"]:
        raise ValueError(f"engine run {run_dir} fails its consistency check: "
                         f"{check['lookup_mismatches'][:3]} {check['consistency_mismatches'][:3]}")
    predicted = per_request_hits(trace, cap - 1, "lru", "prefix").select("request_id", "hit_blocks")
    per = requests.select("request_id", "workload", "num_prompt_tokens", "num_cached_tokens",
                          "num_preemptions").join(predicted, on="request_id", how="left").with_columns(
        (pl.col("hit_blocks").fill_null(0) * bs).alias("replay_cached_tokens"))
    unsched_by: dict[str, int] = {}
    for entry in meta.get("unschedulable") or []:
        unsched_by[entry["workload"]] = unsched_by.get(entry["workload"], 0) + 1
    groups = [(w, per.filter(pl.col("workload") == w)) for w in sorted(per["workload"].unique().to_list())]
    if len(groups) > 1:
        groups.append(("all", per))
    rows = []
    for tag, g in groups:
        prompt = int(g["num_prompt_tokens"].sum())
        rows.append({
            "run": meta["workload"], "workload": tag, "block_size": bs, "capacity_blocks": cap,
            "requests": g.height, "prompt_tokens": prompt,
            "engine_hit_rate": g["num_cached_tokens"].sum() / prompt if prompt else None,
            "replay_hit_rate": g["replay_cached_tokens"].sum() / prompt if prompt else None,
            "requests_differ": int((g["num_cached_tokens"] != g["replay_cached_tokens"]).sum()),
            "preempted_requests": int((g["num_preemptions"] > 0).sum()),
            "preemptions": int(g["num_preemptions"].sum()),
            "unschedulable": sum(unsched_by.values()) if tag == "all" else unsched_by.get(tag, 0),
            "evictions": evictions,
        })
    return pl.DataFrame(rows, schema=TABLE_SCHEMA)


def engine_capacity_table(run_dirs: list[str | Path]) -> pl.DataFrame:
    frames = [run_comparison(d) for d in run_dirs]
    if not frames:
        return pl.DataFrame(schema=TABLE_SCHEMA)
    return pl.concat(frames).unique(["run", "workload", "block_size", "capacity_blocks"], keep="first") \
        .sort("run", "workload", "block_size", "capacity_blocks")

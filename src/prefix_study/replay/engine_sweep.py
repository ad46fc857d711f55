"""Engine truth at every engine capacity: what vLLM served, beside two replays.

For every engine run (a workload, or the mixed stream, at one engine block
size and capacity; the runs at `engine.capacity_blocks` and those of the
`engine.capacities` sweep) the run's own block trace, derived and checked by
the traces stage, is replayed twice:

- `sequential`: `prefix` LRU one request at a time at capacity - 1 (vLLM keeps
  one null block out of its pool), the replay the rest of the study uses;
- `batched`: vLLM's block pool re-executed along the schedule the engine
  recorded (`replay/batched.py`: which requests held blocks at each step,
  admissions, failed allocations, preemptions, frees).

Per workload tag (and `all` for the mixed run) the table gives the three token
hit rates and the number of requests whose cached tokens differ from vLLM's
`num_cached_tokens` under each replay: the sequential replay differs where
batching (concurrent holders, preemption) changes what is cached; the batched
replay is expected to differ nowhere.

Under an in-engine eviction policy other than vLLM's LRU
(`engine.eviction`), the batched replay (which re-executes vLLM's LRU queue)
does not apply and its columns are null; the sequential replay uses the
policy's own vLLM-pool prefix replay where one exists (`fifo`), else it is
null too. A server run (`engine.mode=server`) has no schedule (vLLM's
scheduler runs in the server), so its batched columns are null as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import polars as pl

from prefix_study.replay.batched import batched_replay, request_hashes
from prefix_study.replay.per_request import per_request_hits

TABLE_SCHEMA = {
    "run": pl.String, "workload": pl.String, "block_size": pl.Int64, "capacity_blocks": pl.Int64,
    "requests": pl.Int64, "prompt_tokens": pl.Int64, "engine_hit_rate": pl.Float64,
    "batched_replay_hit_rate": pl.Float64, "sequential_replay_hit_rate": pl.Float64,
    "requests_differ_batched": pl.Int64, "requests_differ_sequential": pl.Int64,
    "preempted_requests": pl.Int64, "preemptions": pl.Int64, "unschedulable": pl.Int64,
    "evictions": pl.Int64,
}


#: In-engine eviction policy -> the replay policy whose `prefix` replay
#: models it in vLLM's block pool, one request at a time.
SEQUENTIAL_TWIN = {"lru": "lru", "fifo": "fifo"}


@dataclass(frozen=True)
class EngineRunFiles:
    """One engine run: its directory (requests, KV events, schedule, run.json)
    and its block trace at the engine's block size."""

    run: str
    block_size: int
    capacity_blocks: int
    engine_dir: Path
    trace: Path


def per_request_comparison(files: EngineRunFiles) -> pl.DataFrame:
    """Per request of one run: vLLM's cached tokens, and both replays'."""
    bs, cap = files.block_size, files.capacity_blocks
    meta = json.loads((files.engine_dir / "run.json").read_text())
    if int(meta["block_size"]) != bs or int(meta["engine"]["capacity_blocks"]) != cap:
        raise ValueError(f"{files.engine_dir}: ran at b{meta['block_size']} with "
                         f"{meta['engine']['capacity_blocks']} blocks, not b{bs} with {cap}")
    requests = pl.read_parquet(files.engine_dir / "requests.parquet", columns=[
        "request_id", "workload", "num_prompt_tokens", "num_cached_tokens", "num_preemptions"])
    trace = pl.read_parquet(files.trace)
    eviction = meta["engine"].get("eviction", "lru")
    out = requests
    if eviction in SEQUENTIAL_TWIN:
        sequential = per_request_hits(trace, cap - 1, SEQUENTIAL_TWIN[eviction], "prefix").select(
            "request_id", (pl.col("hit_blocks") * bs).alias("sequential_cached_tokens"))
        out = out.join(sequential, on="request_id", how="left").with_columns(
            pl.col("sequential_cached_tokens").fill_null(0))
    else:
        out = out.with_columns(pl.lit(None, dtype=pl.Int64).alias("sequential_cached_tokens"))
    if eviction == "lru" and meta.get("engine_mode", "in_process") == "in_process":
        schedule = pl.read_parquet(files.engine_dir / "schedule.parquet")
        batched = batched_replay(schedule, request_hashes(trace), cap, bs).select(
            "request_id", pl.col("hit_tokens").alias("batched_cached_tokens"))
        out = out.join(batched, on="request_id", how="left").with_columns(
            pl.col("batched_cached_tokens").fill_null(0))
    else:
        out = out.with_columns(pl.lit(None, dtype=pl.Int64).alias("batched_cached_tokens"))
    return out


def _token_rate(per: pl.DataFrame, col: str, prompt_tokens: int) -> float | None:
    """Cached tokens / prompt tokens; None where the replay does not apply."""
    if not prompt_tokens or per[col].null_count():
        return None
    return per[col].sum() / prompt_tokens


def _requests_differ(per: pl.DataFrame, col: str) -> int | None:
    """Requests whose cached tokens differ from vLLM's `num_cached_tokens`."""
    return None if per[col].null_count() else int((per["num_cached_tokens"] != per[col]).sum())


def compare_engine_run(files: EngineRunFiles) -> pl.DataFrame:
    """Rows per workload tag (and `all` for a run that mixes workloads)."""
    per = per_request_comparison(files)
    meta = json.loads((files.engine_dir / "run.json").read_text())
    evictions = pl.scan_parquet(files.engine_dir / "kv_events.parquet").filter(
        pl.col("event") == "removed").select(pl.len()).collect().item()
    unschedulable: dict[str, int] = {}
    for entry in meta.get("unschedulable") or []:
        unschedulable[entry["workload"]] = unschedulable.get(entry["workload"], 0) + 1
    groups = [(w, per.filter(pl.col("workload") == w)) for w in sorted(per["workload"].unique().to_list())]
    if len(groups) > 1:
        groups.append(("all", per))
    rows = []
    for tag, g in groups:
        prompt = int(g["num_prompt_tokens"].sum())
        rate = lambda col: _token_rate(g, col, prompt)  # noqa: E731
        differ = lambda col: _requests_differ(g, col)  # noqa: E731
        rows.append({
            "run": files.run, "workload": tag, "block_size": files.block_size,
            "capacity_blocks": files.capacity_blocks, "requests": g.height, "prompt_tokens": prompt,
            "engine_hit_rate": rate("num_cached_tokens"),
            "batched_replay_hit_rate": rate("batched_cached_tokens"),
            "sequential_replay_hit_rate": rate("sequential_cached_tokens"),
            "requests_differ_batched": differ("batched_cached_tokens"),
            "requests_differ_sequential": differ("sequential_cached_tokens"),
            # null for a server run: the client cannot see preemptions
            "preempted_requests": None if g["num_preemptions"].null_count() else int((g["num_preemptions"] > 0).sum()),
            "preemptions": None if g["num_preemptions"].null_count() else int(g["num_preemptions"].sum()),
            "unschedulable": sum(unschedulable.values()) if tag == "all" else unschedulable.get(tag, 0),
            "evictions": evictions,
        })
    return pl.DataFrame(rows, schema=TABLE_SCHEMA)


def engine_sweep_table(runs: Iterable[EngineRunFiles]) -> pl.DataFrame:
    """Every run's rows, sorted by run, workload, block size, capacity."""
    frames = [compare_engine_run(f) for f in runs]
    if not frames:
        return pl.DataFrame(schema=TABLE_SCHEMA)
    return pl.concat(frames).sort("run", "workload", "block_size", "capacity_blocks")


def engine_sweep_markdown(table: pl.DataFrame) -> str:
    """One line per run x workload x block size, capacities as columns:
    `engine / batched / sequential (differ: batched, sequential of n; preempted)`."""
    from prefix_study.io import markdown_table

    if table.is_empty():
        return "(no engine runs)\n"
    # n/a where a replay does not apply (pl.format would null the whole cell).
    cell = pl.format("{} / {} / {} ({}, {} of {}; {})",
                     *[pl.col(c).round(3).cast(pl.String).fill_null("n/a")
                       for c in ("engine_hit_rate", "batched_replay_hit_rate", "sequential_replay_hit_rate")],
                     *[pl.col(c).cast(pl.String).fill_null("n/a")
                       for c in ("requests_differ_batched", "requests_differ_sequential", "requests",
                                 "preempted_requests")])
    wide = (table.with_columns(cell.alias("cell"),
                               pl.format("C={}", "capacity_blocks").alias("capacity"))
            .sort("capacity_blocks")
            .pivot(on="capacity", index=["run", "workload", "block_size"], values="cell",
                   maintain_order=True)
            .sort("run", "workload", "block_size"))
    return markdown_table(wide)

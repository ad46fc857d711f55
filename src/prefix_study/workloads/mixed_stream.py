"""The mixed workload as one engine request stream (the engine-side twin of
`mixed/interleave.py`, which mixes traces, with the same `mix.pattern`).

Every workload's request stream (`workloads/{workload}.parquet`) keeps its
rows; request and conversation ids already carry the workload name, so they
stay unique. Only first turns get (possibly) new arrival times: later turns
are sent by the driver after the previous turn finished plus `think_time_s`.

`timestamp`: each workload keeps its own arrival times (the streams are
superposed). `round_robin`: conversations take turns by workload, `burst` at a
time (in each workload's own arrival order), and are given the superposed
stream's sorted arrival times in that order, so the combined arrival process
is the same as under `timestamp` while the workload order is round robin.
"""

from __future__ import annotations

from typing import Mapping

import polars as pl

from prefix_study.config.schema import MIX_PATTERNS as PATTERNS


def mixed_request_stream(streams: Mapping[str, pl.DataFrame], pattern: str = "round_robin",
                         burst: int = 1) -> pl.DataFrame:
    """One request stream holding every request of every workload.

    streams: {workload: request stream}; the mapping's order is the order in
    which workloads take turns (round robin) and break arrival ties.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"mix.pattern={pattern!r}: allowed {list(PATTERNS)}")
    if burst < 1:
        raise ValueError(f"mix.burst={burst}: must be a positive integer")
    if not streams:
        raise ValueError("no request streams to mix")
    parts = []
    for w_idx, (name, frame) in enumerate(streams.items()):
        wrong = frame.filter(pl.col("workload") != name)["workload"].unique().to_list()
        if wrong:
            raise ValueError(f"stream for workload {name!r} holds rows of {wrong}")
        parts.append(frame.with_columns(pl.lit(w_idx, dtype=pl.Int32).alias("_w")))
    rows = pl.concat(parts, how="vertical_relaxed")
    dup = rows.filter(pl.col("request_id").is_duplicated())["request_id"].unique().to_list()
    if dup:
        raise ValueError(f"request ids repeat across workloads: {sorted(dup)[:5]}")
    shared = rows.group_by("conversation_id").agg(pl.col("_w").n_unique().alias("n")).filter(pl.col("n") > 1)
    if shared.height:
        raise ValueError("conversation ids repeat across workloads: "
                         f"{sorted(shared['conversation_id'].to_list())[:5]}")
    if pattern == "round_robin":
        first = rows.filter(pl.col("turn_index") == 0).sort("_w", "arrival_s", "request_id")
        first = first.with_columns(
            (pl.int_range(pl.len()).over("_w") // burst).alias("_round")
        ).sort("_round", "_w", "arrival_s", "request_id")
        times = first["arrival_s"].sort()
        new_arrival = pl.DataFrame({"conversation_id": first["conversation_id"], "_arrival": times})
        rows = rows.join(new_arrival, on="conversation_id", how="left").with_columns(
            pl.when(pl.col("turn_index") == 0).then(pl.col("_arrival"))
            .otherwise(pl.col("arrival_s")).alias("arrival_s")
        ).drop("_arrival")
    return rows.sort("arrival_s", "_w", "request_id").drop("_w")


def first_conversations(stream: pl.DataFrame, n: int) -> pl.DataFrame:
    """Every turn of the `n` conversations that arrive first (ties by id): the
    engine capacity sweep's subset under `engine.capacity_conversations`."""
    first = (stream.filter(pl.col("turn_index") == 0).sort("arrival_s", "conversation_id")
             .head(n)["conversation_id"])
    return stream.filter(pl.col("conversation_id").is_in(first.implode()))

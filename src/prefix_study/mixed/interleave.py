"""Interleave several workloads' traces into one request stream.

`round_robin`: each workload in turn contributes `burst` consecutive requests
(in its own order); a workload that runs out drops out of the rotation.
`timestamp`: requests merged by arrival (the time_s of their first block);
ties keep workload order, then each workload's own order. Requests stay whole.
"""

from __future__ import annotations

from typing import Mapping

import polars as pl

from prefix_study.config.schema import MIX_PATTERNS as PATTERNS
from prefix_study.traces.block_ids import with_block_ids


def interleave_traces(frames: Mapping[str, pl.DataFrame], pattern: str = "round_robin", burst: int = 1) -> pl.DataFrame:
    """One trace frame with every request of every workload, interleaved.

    frames: {workload: trace frame}; the workload order is the mapping's order
    and the key becomes the `workload` column. `block_id` is derived anew
    over the interleaved frame (each file's ids are its own).
    """
    if pattern not in PATTERNS:
        raise ValueError(f"mix.pattern={pattern!r}: allowed {list(PATTERNS)}")
    if burst < 1:
        raise ValueError(f"mix.burst={burst}: must be a positive integer")
    parts = []
    for w_idx, (name, frame) in enumerate(frames.items()):
        new_request = (
            (pl.col("position") == 0) | (pl.col("request_id") != pl.col("request_id").shift(1))
        ).fill_null(True)
        parts.append(
            frame.with_columns(
                pl.lit(name, dtype=pl.String).alias("workload"),
                pl.lit(w_idx, dtype=pl.Int32).alias("_w"),
                (new_request.cast(pl.Int64).cum_sum() - 1).alias("_req"),
                pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
            )
        )
    if not parts:
        raise ValueError("no traces to interleave")
    rows = pl.concat(parts, how="diagonal_relaxed")  # optional columns may differ
    requests = rows.group_by("_w", "_req").agg(pl.col("time_s").first().alias("_start"))
    if pattern == "round_robin":
        requests = requests.with_columns((pl.col("_req") // burst).alias("_round"))
        order_keys = ["_round", "_w", "_req"]
    else:
        order_keys = ["_start", "_w", "_req"]
    requests = requests.sort(order_keys).with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_order"))
    return with_block_ids(
        rows.join(requests.select("_w", "_req", "_order"), on=["_w", "_req"])
        .sort("_order", "_row")
        .drop("_w", "_req", "_row", "_order")
    )

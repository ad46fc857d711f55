"""Per-request latencies from the driver's clock (simulated, wall or cost model).

ttft_s = first_token_s - arrival_s (queueing included), queue_s =
scheduled_s - arrival_s (waiting before vLLM first schedules the request),
tpot_s = (finished_s - first_token_s) / (output tokens - 1) (null for a
single output token).
"""

from __future__ import annotations

import polars as pl

LATENCY_COLUMNS = ("ttft_s", "tpot_s", "queue_s")


def with_latency_columns(requests: pl.DataFrame) -> pl.DataFrame:
    """`requests.parquet` rows plus ttft_s, tpot_s and queue_s."""
    n_out = pl.col("output_token_ids").list.len()
    return requests.with_columns(
        (pl.col("first_token_s") - pl.col("arrival_s")).alias("ttft_s"),
        pl.when(n_out > 1).then((pl.col("finished_s") - pl.col("first_token_s")) / (n_out - 1))
        .otherwise(None).cast(pl.Float64).alias("tpot_s"),
        (pl.col("scheduled_s") - pl.col("arrival_s")).alias("queue_s"),
    )

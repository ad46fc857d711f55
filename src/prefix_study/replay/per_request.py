"""Per-request replay hits, for comparison with the engine's num_cached_tokens."""

from __future__ import annotations

import numpy as np
import polars as pl

from prefix_study.replay.simulate import replay_hit_mask
from prefix_study.replay.kernels._common import REQUEST_START
from prefix_study.replay.trace import BlockTrace, encode_trace


def per_request_hits(
    frame: pl.DataFrame, capacity: int, policy: str = "lru", semantics: str = "prefix"
) -> pl.DataFrame:
    """One row per request (trace order): request_id, workload, lookup_blocks,
    hit_blocks. With policy `lru`, `prefix` semantics and the engine's
    capacity, hit_blocks x block size is the replay's prediction of vLLM's
    num_cached_tokens. Note the engine's usable capacity is
    num_gpu_blocks_override - 1 (vLLM reserves a null block).
    """
    trace = encode_trace(frame)
    return per_request_from_mask(frame, trace, replay_hit_mask(trace, policy, capacity, semantics))


def per_request_from_mask(frame: pl.DataFrame, trace: BlockTrace, hits: np.ndarray) -> pl.DataFrame:
    """`per_request_hits` for a hit mask already computed over `encode_trace(frame)`."""
    looked = trace.looked_up
    request = np.cumsum((trace.flags & REQUEST_START) != 0) - 1
    n = trace.num_requests
    first = np.flatnonzero(trace.flags & REQUEST_START)
    return pl.DataFrame(
        {
            "request_id": frame["request_id"].gather(first),
            "workload": frame["workload"].gather(first),
            "lookup_blocks": np.bincount(request, weights=looked, minlength=n).astype(np.int64),
            "hit_blocks": np.bincount(request, weights=hits & looked, minlength=n).astype(np.int64),
        }
    )


def labelled_per_request(frame: pl.DataFrame, trace: BlockTrace, hits: np.ndarray, block_size: int,
                         policy: str, semantics: str, capacity: int) -> pl.DataFrame:
    """`per_request_from_mask` with the replay it comes from, in the column
    order of `replay/per_request.parquet` (replay.sweep.PER_REQUEST_SCHEMA)."""
    return per_request_from_mask(frame, trace, hits).select(
        "workload", pl.lit(int(block_size)).alias("block_size"), pl.lit(policy).alias("policy"),
        pl.lit(semantics).alias("semantics"), pl.lit(int(capacity)).alias("capacity_blocks"),
        "request_id", "lookup_blocks", "hit_blocks")

"""Dense block ids: the trace contract's `block_id` column.

The replay kernels keep cache state in flat arrays indexed by block, so they
need each distinct `block_hash` as a dense int32 id (0..k-1, in order of first
use: blocks used close in time sit close in memory). Turning 64-bit hashes
into such ids is a hash-map pass over the whole trace; it is paid once, when a
trace file is written (`trace_frame`), not by every replay that reads it.
A frame that combines several traces (`mixed/interleave.py`) re-derives the
column over the combination (`with_block_ids`): ids of two files collide.
"""

from __future__ import annotations

from typing import Any, Mapping

import numba as nb
import numpy as np
import polars as pl

from prefix_study.traces.schema import TRACE_SCHEMA


@nb.njit(cache=True, nogil=True)
def _first_appearance_ids(hashes):
    """Dense ids in order of first appearance (open addressing, one pass)."""
    n = hashes.shape[0]
    size = 1
    while size < n + n // 2 + 1:
        size *= 2
    mask = size - 1
    keys = np.empty(size, dtype=np.uint64)
    vals = np.full(size, -1, dtype=np.int32)
    out = np.empty(n, dtype=np.int32)
    count = 0
    for i in range(n):
        k = hashes[i]
        j = ((k ^ (k >> np.uint64(29))) * np.uint64(0xBF58476D1CE4E5B9)) >> np.uint64(20)
        j = np.int64(j & np.uint64(mask))
        while True:
            v = vals[j]
            if v == -1:
                keys[j] = k
                vals[j] = count
                out[i] = count
                count += 1
                break
            if keys[j] == k:
                out[i] = v
                break
            j = (j + 1) & mask
    return out, count


def dense_block_ids(hashes: np.ndarray) -> tuple[np.ndarray, int]:
    """Map uint64 block hashes to dense int32 ids 0..k-1 in order of first
    appearance; returns (ids, k)."""
    ids, count = _first_appearance_ids(np.ascontiguousarray(hashes, dtype=np.uint64))
    return ids, int(count)


def with_block_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with `block_id` derived from its `block_hash` (placed after it)."""
    ids, _ = dense_block_ids(frame["block_hash"].to_numpy())
    column = pl.Series("block_id", ids, dtype=pl.Int32)
    if "block_id" in frame.columns:
        return frame.with_columns(column)
    return frame.clone().insert_column(frame.get_column_index("block_hash") + 1, column)


def trace_frame(columns: Mapping[str, Any], extra: Mapping[str, pl.DataType] | None = None) -> pl.DataFrame:
    """A trace frame in the contract (traces/schema.py) from every contract
    column but `block_id`, which is derived here; `extra`: the schema of
    further columns (e.g. `partial_tail`)."""
    schema = {k: v for k, v in TRACE_SCHEMA.items() if k != "block_id"}
    return with_block_ids(pl.DataFrame(columns, schema={**schema, **(extra or {})}))

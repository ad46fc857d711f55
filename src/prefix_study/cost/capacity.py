"""Cache capacity in blocks, tokens or GiB of KV memory of a named model.

A capacity given in tokens or GiB becomes whole blocks (rounded down): a
cache cannot hold part of a block. Tokens and GiB of a block count are exact.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from prefix_study.config.schema import CAPACITY_UNITS
from prefix_study.cost.profiles import GIB, ModelProfile

if TYPE_CHECKING:  # config validation converts capacities: no polars for that
    import polars as pl


def capacity_blocks(capacity: float, unit: str, block_size: int, model: ModelProfile) -> int:
    """Whole blocks of `block_size` tokens that `capacity` (in `unit`) holds."""
    if unit == "blocks":
        return int(capacity)
    if unit == "tokens":
        return int(capacity) // int(block_size)
    if unit == "gib":
        # A small epsilon so that GiB computed from a block count maps back to it.
        return int(math.floor(float(capacity) * GIB / model.kv_bytes_per_block(block_size) + 1e-9))
    raise ValueError(f"capacity unit {unit!r}: allowed {list(CAPACITY_UNITS)}")


def capacity_tokens(capacity: float, unit: str, block_size: int, model: ModelProfile) -> int:
    """Tokens the cache holds (whole blocks)."""
    return capacity_blocks(capacity, unit, block_size, model) * int(block_size)


def capacity_gib(capacity: float, unit: str, block_size: int, model: ModelProfile) -> float:
    """GiB of KV memory the cache's whole blocks take for `model`."""
    return capacity_blocks(capacity, unit, block_size, model) * model.kv_bytes_per_block(block_size) / GIB


def with_capacity_columns(table: pl.DataFrame, model: ModelProfile) -> pl.DataFrame:
    """Append `capacity_tokens` and `capacity_gib` to a table with
    `capacity_blocks` and `block_size` columns (existing columns unchanged)."""
    import polars as pl

    tokens = pl.col("capacity_blocks") * pl.col("block_size")
    return table.with_columns(
        tokens.cast(pl.Int64).alias("capacity_tokens"),
        (tokens.cast(pl.Float64) * float(model.kv_bytes_per_token()) / GIB).alias("capacity_gib"),
    )

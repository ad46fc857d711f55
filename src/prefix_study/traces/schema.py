"""The block-trace contract: one row per block access, in access order."""

import polars as pl

#: `lookup`: vLLM looks the block up in its prefix cache (a full prompt block
#: before the last prompt token); other rows are computed and stored only.
#: `engine_hit`: the engine served the block from cache (null where the
#: engine did not run at this block size, or for external traces).
TRACE_SCHEMA = {
    "request_id": pl.String,
    "workload": pl.String,
    "time_s": pl.Float64,
    "position": pl.Int32,
    "block_hash": pl.UInt64,
    "engine_hit": pl.Boolean,
    "lookup": pl.Boolean,
}

#: Hash algorithm of vLLM's prefix cache: the engine is started with it and
#: derived traces hash with it (traces/block_hash.py), so their block hashes
#: equal the ones in the engine's KV events.
PREFIX_HASH_ALGO = "sha256"

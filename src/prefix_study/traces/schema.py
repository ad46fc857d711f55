"""The block-trace contract: one row per block access, in access order; a
request's rows are contiguous, with positions 0, 1, 2, ..."""

import polars as pl

#: `block_id`: `block_hash` as a dense id, 0, 1, 2, ... in order of first use
#: within the file (traces/block_ids.py): what the replay kernels index by.
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
    "block_id": pl.Int32,
    "engine_hit": pl.Boolean,
    "lookup": pl.Boolean,
}

#: Hash algorithm of vLLM's prefix cache: the engine is started with it and
#: derived traces hash with it (traces/block_hash.py), so their block hashes
#: equal the ones in the engine's KV events.
PREFIX_HASH_ALGO = "sha256"


def reported_lookup_index(preemptions: "list[int]") -> "int | None":
    """Which of a request's prefix lookups (their `preemptions` so far, in
    order) vLLM reports as `num_cached_tokens`: the last one before the first
    preemption. vLLM 0.32 sets a request's prefill stats at every lookup while
    `request.num_preemptions <= 0` (v1/core/sched/scheduler.py), so retries
    after a failed allocation overwrite it and re-lookups after a preemption
    do not."""
    first = [i for i, p in enumerate(preemptions) if p == 0]
    return first[-1] if first else None


#: `kv_events.parquet` of an engine run (in-process or server), one row per
#: block in vLLM's KV-cache events: `seq` row number, `event_index` the vLLM
#: event (one BlockStored holds many blocks), `step` the engine step (null
#: for a server run), `time_s` the run's clock then, `event` stored /
#: removed / cleared, the block's and its parent's hash (low 64 bits),
#: `num_tokens` tokens per block (stored only).
KV_EVENT_SCHEMA = {
    "seq": "int64", "event_index": "int64", "step": "int64", "time_s": "float64",
    "event": "string", "block_hash": "uint64", "parent_block_hash": "uint64",
    "num_tokens": "int32",
}

_MASK64 = (1 << 64) - 1


def as_uint64(block_hash: "bytes | int | None") -> "int | None":
    """vLLM's external block hash (the digest's bytes, or an int) as its low
    64 bits, as every table of the project keeps it."""
    if block_hash is None:
        return None
    if isinstance(block_hash, (bytes, bytearray)):
        return int.from_bytes(block_hash, "big") & _MASK64
    return int(block_hash) & _MASK64

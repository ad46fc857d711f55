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

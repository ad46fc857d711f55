"""Engine runs beside their replays, per request (shared by bench/engine_vs_replay.py
and bench/engine_policies.py; outside the package because it joins the sealed
engine library with the replay, see docs/architecture.md "Import layers").

One engine run at a binding capacity, then per request: what vLLM served
(`num_cached_tokens`), the batched replay driven by the engine's recorded
schedule (replay/batched.py) and the sequential prefix replay of the derived
trace (one request at a time, kernels/lru.py), both at the engine's capacity
minus vLLM's null block.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from prefix_study.engine.driver import ClockModel, drive
from prefix_study.engine.requests import check_request_stream
from prefix_study.engine.runtime import Engine, EngineSpec
from prefix_study.replay.batched import batched_replay, request_hashes
from prefix_study.replay.per_request import per_request_hits
from prefix_study.traces.derive import derive_block_trace


def default_streams(cfg: Any) -> dict[str, pl.DataFrame]:
    """The ShareGPT workloads of `cfg`, as request streams (workloads stage)."""
    from prefix_study.workloads.builders import SHAREGPT_BUILDERS
    from prefix_study.workloads.request_stream import build_workload_table
    from prefix_study.workloads.sharegpt import load_sharegpt

    data = load_sharegpt(cfg)
    return {name: pl.from_arrow(build_workload_table(cfg, name, data))
            for name, wl in cfg.workloads.items() if wl.kind in SHAREGPT_BUILDERS}


def binding_spec(cfg: Any, model_dir: str | Path, block_size: int, capacity: int,
                 max_num_seqs: int, eviction: str = "lru",
                 cache_friendly: tuple[str, ...] = ()) -> EngineSpec:
    """The config's engine at `capacity` blocks; `max_model_len` follows the
    capacity where one max-length request would not fit (vLLM refuses that)."""
    spec = EngineSpec.from_config(cfg.engine, model_dir, block_size)
    max_len = min(spec.max_model_len, (capacity - 1) * block_size)
    return replace(spec, capacity_blocks=capacity, max_model_len=max_len,
                   max_num_batched_tokens=max(spec.max_num_batched_tokens, max_len),
                   max_num_seqs=max_num_seqs, eviction=eviction, cache_friendly=cache_friendly)


def run_engine(engine: Engine, stream: pl.DataFrame, cfg: Any, progress: bool = True,
               desc: str = "engine") -> tuple[Any, pl.DataFrame, list[dict]]:
    """(DriveResult, derived trace, skipped requests) of one run on an emptied cache."""
    engine.reset()
    checked = check_request_stream(stream, engine.spec.max_model_len, str(cfg.engine.simulator),
                                   skip_too_long=True)
    clock = ClockModel(str(cfg.engine.clock), float(cfg.engine.step_overhead_s),
                       float(cfg.engine.token_time_s))
    res = drive(engine, checked.frame, mode=str(cfg.engine.simulator), clock=clock,
                progress=progress, desc=desc)
    bs = engine.spec.block_size
    trace = derive_block_trace(res.requests, bs, engine.none_hash_seed(), engine_block_size=bs)
    return res, trace, checked.skipped


def compare_requests(res: Any, trace: pl.DataFrame, capacity: int, block_size: int) -> pl.DataFrame:
    """Per request: engine, batched replay and sequential replay cached tokens."""
    batched = batched_replay(res.schedule, request_hashes(trace), capacity, block_size)
    sequential = per_request_hits(trace, capacity - 1, "lru", "prefix")
    return (
        res.requests.select("request_id", "workload", "num_prompt_tokens",
                            pl.col("num_cached_tokens").cast(pl.Int64).alias("engine"))
        .join(batched.select("request_id", pl.col("hit_tokens").alias("batched"), "preemptions"),
              on="request_id", how="left")
        .join(sequential.select("request_id", (pl.col("hit_blocks") * block_size).alias("sequential")),
              on="request_id", how="left")
        # A prompt shorter than one block has no trace rows: nothing to hit.
        .with_columns(pl.col("sequential").fill_null(0))
    )


def summarize(per_request: pl.DataFrame) -> dict[str, Any]:
    """Token hit rates and the number of requests whose cached tokens differ."""
    prompt = max(int(per_request["num_prompt_tokens"].sum()), 1)
    return {
        "requests": per_request.height,
        "engine": per_request["engine"].sum() / prompt,
        "batched": per_request["batched"].fill_null(0).sum() / prompt,
        "sequential": per_request["sequential"].fill_null(0).sum() / prompt,
        "batched_differ": int((per_request["batched"] != per_request["engine"]).fill_null(True).sum()),
        "sequential_differ": int((per_request["sequential"] != per_request["engine"]).fill_null(True).sum()),
    }

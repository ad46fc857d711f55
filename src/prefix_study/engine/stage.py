"""Engine stage: one workload through vLLM at one engine block size (rule `engine_run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from prefix_study.config.schema import EngineConfig
from prefix_study.engine.driver import ClockModel, drive
from prefix_study.engine.latency import with_latency_columns
from prefix_study.engine.requests import check_request_stream
from prefix_study.engine.runtime import EngineSpec, build_engine
from prefix_study.io import atomic_path, write_json, write_parquet
from prefix_study.traces.schema import PREFIX_HASH_ALGO


def run(engine_cfg: EngineConfig, workload_file: str | Path, model_dir: str | Path,
        block_size: int, out_dir: str | Path, progress: bool = True, cost: Any = None) -> dict[str, Any]:
    """Check the stream, run it, and write `requests.parquet` (with TTFT, TPOT
    and queueing columns), `kv_events.parquet`, `schedule.parquet` (what vLLM's
    KV cache manager did: engine/schedule.py) and `run.json` (the traces stage
    turns them into block traces and per-block records). `cost`: the
    prefix_study.cost.CostModel that times steps under engine.clock=cost_model."""
    import torch
    import vllm

    out = Path(out_dir)
    stream = pl.read_parquet(workload_file)
    mode = str(engine_cfg.simulator)
    checked = check_request_stream(stream, int(engine_cfg.max_model_len), mode,
                                   bool(engine_cfg.skip_too_long))
    spec = EngineSpec.from_config(engine_cfg, model_dir, block_size)
    engine = build_engine(spec)
    if str(engine_cfg.clock) == "cost_model" and cost is None:
        raise ValueError("engine.clock=cost_model needs the cost model (model, hardware, cost)")
    clock = ClockModel(str(engine_cfg.clock), float(engine_cfg.step_overhead_s),
                       float(engine_cfg.token_time_s), cost=cost)
    workload = stream["workload"][0] if stream.height else Path(workload_file).stem
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "kv_events.parquet") as events_tmp:
        engine.events.spill_to(events_tmp)  # events reach disk as they happen
        result = drive(engine, checked.frame, mode=mode, clock=clock, progress=progress,
                       desc=f"engine {workload} b{block_size}")
    write_parquet(with_latency_columns(result.requests), out / "requests.parquet")
    if result.schedule is not None:  # replay/batched.py replays vLLM along it
        write_parquet(result.schedule, out / "schedule.parquet")
    meta = {
        "workload": workload, "block_size": block_size, "mode": mode,
        "engine": {k: getattr(spec, k) for k in spec.__dataclass_fields__ if k != "model_dir"},
        "prefix_hash_algo": PREFIX_HASH_ALGO, "none_hash_seed": engine.none_hash_seed(),
        "skipped": checked.skipped, "stats": result.stats,
        "versions": {"vllm": vllm.__version__, "torch": torch.__version__},
    }
    write_json(meta, out / "run.json")
    return meta

"""Engine stage: every workload through one vLLM engine at one engine block size
(rules `engine_run` and, for the engine capacity sweep, `engine_capacity_run`).

One engine instance serves all workloads of a job (vLLM's start-up costs more
than a small workload's run): between workloads the prefix cache is reset and
the recorders are cleared, so each workload's outputs are byte-identical to a
run on a fresh engine. A capacity-sweep job also runs the mixed workload: the
workloads' request streams interleaved by `mix.pattern` (workloads/mixed_stream.py),
each request tagged by workload. Under `engine.mode=server` the same runs go
through a `vllm serve` and the openai client instead (engine/server.py), into
the same files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from prefix_study.config.schema import MIXED_RUN, EngineConfig, MixConfig
from prefix_study.engine.driver import ClockModel, drive
from prefix_study.engine.latency import with_latency_columns
from prefix_study.engine.requests import check_request_stream
from prefix_study.engine.runtime import Engine, EngineSpec, build_engine
from prefix_study.io import atomic_path, write_json, write_parquet
from prefix_study.traces.schema import PREFIX_HASH_ALGO
from prefix_study.workloads.mixed_stream import first_conversations, mixed_request_stream


def run_workload(engine: Engine, engine_cfg: EngineConfig, stream: pl.DataFrame, workload: str,
                 out_dir: str | Path, progress: bool = True, cost: Any = None) -> dict[str, Any]:
    """Check the stream, run it on the (reset) engine, and write
    `requests.parquet` (with TTFT, TPOT and queueing columns),
    `kv_events.parquet`, `schedule.parquet` (what vLLM's KV cache manager did:
    engine/schedule.py) and `run.json` (the traces stage turns them into block
    traces, per-block records and the consistency check). `cost`: the
    prefix_study.cost.CostModel that times steps under engine.clock=cost_model."""
    import torch
    import vllm

    out = Path(out_dir)
    spec = engine.spec
    mode = str(engine_cfg.simulator)
    checked = check_request_stream(stream, int(engine_cfg.max_model_len), mode,
                                   bool(engine_cfg.skip_too_long))
    if str(engine_cfg.clock) == "cost_model" and cost is None:
        raise ValueError("engine.clock=cost_model needs the cost model (model, hardware, cost)")
    clock = ClockModel(str(engine_cfg.clock), float(engine_cfg.step_overhead_s),
                       float(engine_cfg.token_time_s), cost=cost)
    engine.reset()
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "kv_events.parquet") as events_tmp:
        engine.events.spill_to(events_tmp)  # events reach disk as they happen
        result = drive(engine, checked.frame, mode=mode, clock=clock, progress=progress,
                       desc=f"engine {workload} b{spec.block_size} c{spec.capacity_blocks}")
    write_parquet(with_latency_columns(result.requests), out / "requests.parquet")
    if result.schedule is not None:  # replay/batched.py replays vLLM along it
        write_parquet(result.schedule, out / "schedule.parquet")
    meta = {
        "workload": workload, "block_size": spec.block_size, "mode": mode,
        "engine": {k: getattr(spec, k) for k in spec.__dataclass_fields__ if k != "model_dir"},
        "prefix_hash_algo": PREFIX_HASH_ALGO, "none_hash_seed": engine.none_hash_seed(),
        "skipped": checked.skipped, "unschedulable": result.stats["unschedulable"],
        "stats": result.stats,
        "versions": {"vllm": vllm.__version__, "torch": torch.__version__},
    }
    write_json(meta, out / "run.json")
    return meta


def run_workloads(engine: Engine, engine_cfg: EngineConfig, runs: Mapping[str, pl.DataFrame],
                  out_dirs: Mapping[str, str | Path], progress: bool = True,
                  cost: Any = None) -> dict[str, dict[str, Any]]:
    """Each request stream in turn through `engine`, reset before each."""
    return {name: run_workload(engine, engine_cfg, stream, name, out_dirs[name], progress, cost)
            for name, stream in runs.items()}


def run(engine_cfg: EngineConfig, workload_files: Mapping[str, str | Path], model_dir: str | Path,
        block_size: int, out_root: str | Path, capacity_blocks: int | None = None,
        mixed: bool = False, progress: bool = True, cost: Any = None,
        out_dirs: Mapping[str, str | Path] | None = None,
        mix_cfg: MixConfig | None = None,
        only: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every workload (and with `mixed` the mixed stream) through one engine,
    into `<out_root>/<name>/b<block_size>/` (or `out_dirs[name]`);
    `capacity_blocks` overrides `engine.capacity_blocks` (a capacity-sweep job,
    which runs each workload's first `engine.capacity_conversations`).
    mix_cfg: the mixed stream's `pattern` and `burst`, and the cache-friendly
    workloads of `engine.eviction=wa_lru`. only: run just these of the runs
    (engine.fan_out=workload: the mixed run alone still reads every stream)."""
    mix_cfg = mix_cfg if mix_cfg is not None else MixConfig()
    spec = EngineSpec.from_config(engine_cfg, model_dir, block_size, list(mix_cfg.cache_friendly))
    if capacity_blocks is not None:
        spec = EngineSpec(**{**vars(spec), "capacity_blocks": int(capacity_blocks)})
    streams = {w: pl.read_parquet(p) for w, p in workload_files.items()}
    if capacity_blocks is not None and engine_cfg.capacity_conversations is not None:
        streams = {w: first_conversations(s, int(engine_cfg.capacity_conversations)) for w, s in streams.items()}
    runs = dict(streams)
    if mixed:
        if MIXED_RUN in streams:
            raise ValueError(f"a workload is named {MIXED_RUN!r}, the mixed run's name")
        runs[MIXED_RUN] = mixed_request_stream(streams, str(mix_cfg.pattern), int(mix_cfg.burst))
    if isinstance(only, str):  # a name would be taken letter by letter
        raise TypeError(f"only={only!r}: give a list of run names")
    if only is not None:
        unknown = sorted(set(only) - set(runs))
        if unknown:
            raise ValueError(f"only={unknown}: not among the runs {sorted(runs)}")
        runs = {name: stream for name, stream in runs.items() if name in only}
    dirs = {name: Path(out_root) / name / f"b{block_size}" for name in runs}
    dirs.update(out_dirs or {})
    if str(engine_cfg.mode) == "server":  # `vllm serve` + the openai client (engine/server.py)
        from prefix_study.engine import server

        return server.run_workloads(engine_cfg, spec, runs, dirs, progress)
    return run_workloads(build_engine(spec), engine_cfg, runs, dirs, progress, cost)

from pathlib import Path

from prefix_study.config.schema import MIXED_RUN

# One job per engine block size (and, for the engine capacity sweep, per
# capacity): every workload runs through one vLLM engine instance, whose prefix
# cache is reset between workloads (vLLM's start-up costs more than a small run).
ENGINE_RUN_FILES = ("requests.parquet", "kv_events.parquet", "schedule.parquet", "run.json")


wildcard_constraints:
    cap="[0-9]+",


def engine_run_outputs(root, runs):
    """Named outputs of one engine job: each run's files under root/<run>/b{bs}/."""
    return {f"{run}__{f.replace('.', '_')}": Path(root) / run / "b{bs}" / f
            for run in runs for f in ENGINE_RUN_FILES}


rule engine_run:
    """Every workload through one vLLM engine (CPU, prefix caching, token simulator)
    at one block size, the prefix cache reset between workloads."""
    input:
        cfg=P.stage_config("engine"),
        streams=list(ENGINE_STREAMS.values()),
        model=P.model_dir,
    output:
        **engine_run_outputs(P.stage("engine"), P.engine_workloads),
    params:
        stage="engine",
        streams=ENGINE_STREAMS,
        block_size=lambda w: int(w.bs),
        out_root=P.stage("engine"),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        P.log("engine", "b{bs}"),
    benchmark:
        P.benchmark("engine", "b{bs}")
    script:
        STAGE_SCRIPT


rule engine_capacity_run:
    """The engine capacity sweep: every workload and the mixed workload through one
    engine of `cap` blocks (null block included) at one block size."""
    input:
        cfg=P.stage_config("engine"),
        streams=list(ENGINE_STREAMS.values()),
        model=P.model_dir,
    output:
        **engine_run_outputs(P.engine_capacity_root("{cap}"), P.engine_workloads + [MIXED_RUN]),
    params:
        stage="engine",
        streams=ENGINE_STREAMS,
        block_size=lambda w: int(w.bs),
        capacity=lambda w: int(w.cap),
        mixed=True,
        out_root=lambda w: P.engine_capacity_root(w.cap),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        P.log("engine", "c{cap}_b{bs}"),
    benchmark:
        P.benchmark("engine", "c{cap}_b{bs}")
    script:
        STAGE_SCRIPT


rule engine_no_prefix_caching:
    """One workload through vLLM with prefix caching off: the baseline of the
    savings stage's engine TTFT comparison (engine.clock=cost_model only)."""
    input:
        cfg=P.stage_config("engine"),
        stream=P.workload_stream("{workload}"),
        model=P.model_dir,
    output:
        requests=P.engine_no_cache_dir("{workload}", "{bs}") / "requests.parquet",
        kv_events=P.engine_no_cache_dir("{workload}", "{bs}") / "kv_events.parquet",
        meta=P.engine_no_cache_dir("{workload}", "{bs}") / "run.json",
    params:
        stage="engine",
        streams=lambda w: {w.workload: P.workload_stream(w.workload)},
        block_size=lambda w: int(w.bs),
        out_dirs=lambda w: {w.workload: P.engine_no_cache_dir(w.workload, w.bs)},
        prefix_caching=False,
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        P.log("engine", "no_prefix_caching_{workload}_b{bs}"),
    benchmark:
        P.benchmark("engine", "no_prefix_caching_{workload}_b{bs}")
    script:
        STAGE_SCRIPT

from pathlib import Path

from prefix_study.config.schema import MIXED_RUN

# engine.fan_out=block_size (default): one job per engine block size (and, for
# the engine capacity sweep, per capacity): every workload runs through one
# vLLM engine instance, whose prefix cache is reset between workloads (vLLM's
# start-up costs more than a small run). engine.fan_out=workload: one job per
# workload x block size (x capacity, and the sweep's mixed run), for a cluster
# to spread; the same files byte for byte, so nothing downstream changes.
ENGINE_RUN_FILES = ("requests.parquet", "kv_events.parquet", "schedule.parquet", "run.json")
ENGINE_FAN_OUT = str(CFG.engine.fan_out) == "workload"
# Resources: see the measured figures in README "SLURM" (benchmark TSVs:
# max_rss, s); a CPU engine peaks at 2.3-3.4 GB with the tiny model.
ENGINE_MEM_MB = 8000
ENGINE_RUNTIME_MIN = 120


wildcard_constraints:
    cap="[0-9]+",
    run="|".join(P.engine_workloads + [MIXED_RUN]) or "^$",


def engine_run_outputs(root, runs):
    """Named outputs of one engine job: each run's files under root/<run>/b{bs}/."""
    return {f"{run}__{f.replace('.', '_')}": Path(root) / run / "b{bs}" / f
            for run in runs for f in ENGINE_RUN_FILES}


if not ENGINE_FAN_OUT:

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
            mem_mb=ENGINE_MEM_MB,
            runtime=ENGINE_RUNTIME_MIN,
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
            mem_mb=ENGINE_MEM_MB,
            runtime=ENGINE_RUNTIME_MIN,
        log:
            P.log("engine", "c{cap}_b{bs}"),
        benchmark:
            P.benchmark("engine", "c{cap}_b{bs}")
        script:
            STAGE_SCRIPT

else:

    rule engine_workload_run:
        """One workload through its own vLLM engine at one block size (engine.fan_out=workload)."""
        input:
            cfg=P.stage_config("engine"),
            stream=P.workload_stream("{run}"),
            model=P.model_dir,
        output:
            **engine_run_outputs(P.stage("engine"), ["{run}"]),
        params:
            stage="engine",
            streams=lambda w: {w.run: P.workload_stream(w.run)},
            block_size=lambda w: int(w.bs),
            out_root=P.stage("engine"),
        threads: 1
        resources:
            mem_mb=ENGINE_MEM_MB,
            runtime=ENGINE_RUNTIME_MIN,
        log:
            P.log("engine", "{run}_b{bs}"),
        benchmark:
            P.benchmark("engine", "{run}_b{bs}")
        script:
            STAGE_SCRIPT


    rule engine_capacity_workload_run:
        """One run of the engine capacity sweep (a workload, or the mixed stream of all
        of them) through its own engine of `cap` blocks (engine.fan_out=workload)."""
        input:
            cfg=P.stage_config("engine"),
            streams=list(ENGINE_STREAMS.values()),
            model=P.model_dir,
        output:
            **engine_run_outputs(P.engine_capacity_root("{cap}"), ["{run}"]),
        params:
            stage="engine",
            streams=ENGINE_STREAMS,
            block_size=lambda w: int(w.bs),
            capacity=lambda w: int(w.cap),
            mixed=True,
            only=lambda w: [w.run],  # a list: the stage runs just these
            out_root=lambda w: P.engine_capacity_root(w.cap),
        threads: 1
        resources:
            mem_mb=ENGINE_MEM_MB,
            runtime=ENGINE_RUNTIME_MIN,
        log:
            P.log("engine", "c{cap}_{run}_b{bs}"),
        benchmark:
            P.benchmark("engine", "c{cap}_{run}_b{bs}")
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
        mem_mb=ENGINE_MEM_MB,
        runtime=ENGINE_RUNTIME_MIN,
    log:
        P.log("engine", "no_prefix_caching_{workload}_b{bs}"),
    benchmark:
        P.benchmark("engine", "no_prefix_caching_{workload}_b{bs}")
    script:
        STAGE_SCRIPT

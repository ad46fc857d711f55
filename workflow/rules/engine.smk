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
# Resources (ENGINE_MEM_MB, ENGINE_RUNTIME_MIN): see the measured figures in
# README "SLURM" (benchmark TSVs: max_rss, s).
ENGINE_MEM_MB = 8000
ENGINE_RUNTIME_MIN = 120


wildcard_constraints:
    cap="[0-9]+",
    run="|".join(P.engine_workloads + [MIXED_RUN]) or "^$",


def engine_run_outputs(root, runs):
    """Named outputs of one engine job: each run's files under root/<run>/b{bs}/."""
    return {f"{run}__{f.replace('.', '_')}": Path(root) / run / "b{bs}" / f
            for run in runs for f in ENGINE_RUN_FILES}


ENGINE_WORKLOAD_ARGS = " ".join(f"--workload {w}={P.workload_stream(w)}" for w in P.engine_workloads)


if not ENGINE_FAN_OUT:

    rule engine_run:
        """Every workload through one vLLM engine (CPU, prefix caching, token simulator)
        at one block size, the prefix cache reset between workloads."""
        input:
            cfg=P.stage_config("engine"),
            streams=[P.workload_stream(w) for w in P.engine_workloads],
            model=P.model_dir,
        output:
            **engine_run_outputs(P.stage("engine"), P.engine_workloads),
        params:
            workloads=ENGINE_WORKLOAD_ARGS,
            out_root=P.stage("engine"),
        threads: 1
        resources:
            mem_mb=ENGINE_MEM_MB,
            runtime=ENGINE_RUNTIME_MIN,
        log:
            P.log("engine", "b{bs}"),
        benchmark:
            P.benchmark("engine", "b{bs}")
        shell:
            "{STAGE} engine --config {input.cfg} {params.workloads} --model {input.model} "
            "--block-size {wildcards.bs} --out-root {params.out_root} > {log}"

    rule engine_capacity_run:
        """The engine capacity sweep: every workload and the mixed workload through one
        engine of `cap` blocks (null block included) at one block size."""
        input:
            cfg=P.stage_config("engine"),
            streams=[P.workload_stream(w) for w in P.engine_workloads],
            model=P.model_dir,
        output:
            **engine_run_outputs(P.engine_capacity_root("{cap}"), P.engine_workloads + [MIXED_RUN]),
        params:
            workloads=ENGINE_WORKLOAD_ARGS,
            out_root=lambda w: P.engine_capacity_root(w.cap),
        threads: 1
        resources:
            mem_mb=ENGINE_MEM_MB,
            runtime=ENGINE_RUNTIME_MIN,
        log:
            P.log("engine", "c{cap}_b{bs}"),
        benchmark:
            P.benchmark("engine", "c{cap}_b{bs}")
        shell:
            "{STAGE} engine --config {input.cfg} {params.workloads} --model {input.model} "
            "--block-size {wildcards.bs} --capacity {wildcards.cap} --mixed --out-root {params.out_root} > {log}"

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
            out_root=P.stage("engine"),
        threads: 1
        resources:
            mem_mb=ENGINE_MEM_MB,
            runtime=ENGINE_RUNTIME_MIN,
        log:
            P.log("engine", "{run}_b{bs}"),
        benchmark:
            P.benchmark("engine", "{run}_b{bs}")
        shell:
            "{STAGE} engine --config {input.cfg} --workload {wildcards.run}={input.stream} "
            "--model {input.model} --block-size {wildcards.bs} --out-root {params.out_root} > {log}"

    rule engine_capacity_workload_run:
        """One run of the engine capacity sweep (a workload, or the mixed stream of all
        of them) through its own engine of `cap` blocks (engine.fan_out=workload)."""
        input:
            cfg=P.stage_config("engine"),
            streams=[P.workload_stream(w) for w in P.engine_workloads],
            model=P.model_dir,
        output:
            **engine_run_outputs(P.engine_capacity_root("{cap}"), ["{run}"]),
        params:
            workloads=ENGINE_WORKLOAD_ARGS,
            out_root=lambda w: P.engine_capacity_root(w.cap),
        threads: 1
        resources:
            mem_mb=ENGINE_MEM_MB,
            runtime=ENGINE_RUNTIME_MIN,
        log:
            P.log("engine", "c{cap}_{run}_b{bs}"),
        benchmark:
            P.benchmark("engine", "c{cap}_{run}_b{bs}")
        shell:
            "{STAGE} engine --config {input.cfg} {params.workloads} --model {input.model} "
            "--block-size {wildcards.bs} --capacity {wildcards.cap} --mixed --only {wildcards.run} "
            "--out-root {params.out_root} > {log}"

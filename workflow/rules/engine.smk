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


ENGINE_WORKLOAD_ARGS = " ".join(f"--workload {w}={P.workload_stream(w)}" for w in P.engine_workloads)


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
        mem_mb=8000,
        runtime=120,
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
        mem_mb=8000,
        runtime=120,
    log:
        P.log("engine", "c{cap}_b{bs}"),
    benchmark:
        P.benchmark("engine", "c{cap}_b{bs}")
    shell:
        "{STAGE} engine --config {input.cfg} {params.workloads} --model {input.model} "
        "--block-size {wildcards.bs} --capacity {wildcards.cap} --mixed --out-root {params.out_root} > {log}"

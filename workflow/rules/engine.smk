rule engine_run:
    """One workload through vLLM (CPU, prefix caching, token simulator) at one block size."""
    input:
        cfg=P.stage_config("engine"),
        stream=P.stage("workloads") / "{workload}.parquet",
        model=P.stage("assets") / "model",
    output:
        requests=P.stage("engine") / "{workload}/b{bs}/requests.parquet",
        kv_events=P.stage("engine") / "{workload}/b{bs}/kv_events.parquet",
        blocks=P.stage("engine") / "{workload}/b{bs}/blocks.parquet",
        meta=P.stage("engine") / "{workload}/b{bs}/run.json",
    params:
        engine=lambda w: OmegaConf.to_container(CFG.engine),
        out=lambda w, output: os.path.dirname(output.requests),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        P.stage("engine") / "logs/{workload}_b{bs}.log",
    benchmark:
        P.stage("engine") / "benchmarks/{workload}_b{bs}.tsv"
    shell:
        "{STAGE} engine --config {input.cfg} --workload-file {input.stream} --model {input.model} "
        "--block-size {wildcards.bs} --out {params.out} > {log}"

rule engine_run:
    """One workload through vLLM (CPU, prefix caching, token simulator) at one block size."""
    input:
        cfg=P.stage_config("engine"),
        stream=P.workload_stream("{workload}"),
        model=P.model_dir,
    output:
        requests=P.engine_file("{workload}", "{bs}", "requests.parquet"),
        kv_events=P.engine_file("{workload}", "{bs}", "kv_events.parquet"),
        meta=P.engine_file("{workload}", "{bs}", "run.json"),
    params:
        out=lambda w: P.engine_dir(w.workload, w.bs),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        P.log("engine", "{workload}_b{bs}"),
    benchmark:
        P.benchmark("engine", "{workload}_b{bs}")
    shell:
        "{STAGE} engine --config {input.cfg} --workload-file {input.stream} --model {input.model} "
        "--block-size {wildcards.bs} --out {params.out} > {log}"

def trace_inputs(w):
    """The engine run a trace derives from (none for an external trace)."""
    if w.workload in P.external_workloads:
        return {"cfg": P.stage_config("traces")}
    d = P.engine_dir(w.workload, P.engine_source_block_size(int(w.bs)))
    return {"cfg": P.stage_config("traces"), "requests": d / "requests.parquet",
            "kv_events": d / "kv_events.parquet", "meta": d / "run.json"}


rule block_trace:
    """Block-access trace at one block size, hashed with vLLM's chained block hash
    (or imported from an external trace); checked against the engine's KV events."""
    input:
        unpack(trace_inputs),
    output:
        trace=P.stage("traces") / "{workload}/b{bs}.parquet",
        check=P.stage("traces") / "{workload}/b{bs}.check.json",
    params:
        engine_dir=lambda w, input: os.path.dirname(input.requests) if "requests" in input.keys() else "",
    resources:
        mem_mb=4000,
    log:
        P.stage("traces") / "logs/{workload}_b{bs}.log",
    benchmark:
        P.stage("traces") / "benchmarks/{workload}_b{bs}.tsv"
    shell:
        "{STAGE} trace --config {input.cfg} --workload {wildcards.workload} --block-size {wildcards.bs} "
        "--engine-dir '{params.engine_dir}' --out {output.trace} --check {output.check} > {log} 2>&1"

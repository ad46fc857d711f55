rule workload:
    """ShareGPT conversations -> one workload's timed request stream."""
    input:
        cfg=P.stage_config("workloads"),
    output:
        stream=P.workload_stream("{workload}"),
        summary=P.workload_summary("{workload}"),
    log:
        P.log("workloads", "{workload}"),
    benchmark:
        P.benchmark("workloads", "{workload}")
    shell:
        "{STAGE} workloads --config {input.cfg} --workload {wildcards.workload} "
        "--out {output.stream} --summary {output.summary} > {log} 2>&1"

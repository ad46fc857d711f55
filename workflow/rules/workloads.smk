rule workload:
    """ShareGPT conversations -> one workload's timed request stream."""
    input:
        cfg=P.stage_config("workloads"),
    output:
        stream=P.stage("workloads") / "{workload}.parquet",
        summary=P.stage("workloads") / "{workload}.summary.json",
    params:
        workload=lambda w: OmegaConf.to_container(CFG.workloads[w.workload]),
    log:
        P.stage("workloads") / "logs/{workload}.log",
    benchmark:
        P.stage("workloads") / "benchmarks/{workload}.tsv"
    shell:
        "{STAGE} workload --config {input.cfg} --workload {wildcards.workload} "
        "--out {output.stream} --summary {output.summary} > {log} 2>&1"

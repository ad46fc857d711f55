rule workload:
    """ShareGPT conversations -> one workload's timed request stream."""
    input:
        cfg=P.stage_config("workloads"),
        # Its content is in the stage hash: a changed file gives a new stage
        # directory, so its mtime alone need not trigger a rerun.
        dataset=ancient(P.dataset_file),
    output:
        stream=P.workload_stream("{workload}"),
        summary=P.workload_summary("{workload}"),
    params:
        stage="workloads",
    log:
        P.log("workloads", "{workload}"),
    benchmark:
        P.benchmark("workloads", "{workload}")
    script:
        STAGE_SCRIPT

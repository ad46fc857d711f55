rule stats:
    """Reuse fraction, hits per block, reuse gaps, infinite-cache hit rate (polars)."""
    input:
        cfg=P.stage_config("stats"),
        traces=list(SWEEP_TRACES.values()),
    output:
        summary=P.stats("reuse_summary.parquet"),
        md=report(P.stats("reuse_summary.md"), caption=str(caption_path("reuse_summary")), category="Tables"),
        cdfs=P.stats("reuse_cdfs.parquet"),
    params:
        stage="stats",
        traces=SWEEP_TRACES,
    resources:
        mem_mb=4000,
    log:
        P.log("stats", "stats"),
    benchmark:
        P.benchmark("stats", "stats")
    script:
        STAGE_SCRIPT

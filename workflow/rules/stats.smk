rule reuse_stats:
    """Reuse fraction, hits per block, reuse gaps, infinite-cache hit rate (polars)."""
    input:
        cfg=P.stage_config("stats"),
        traces=[P.trace(w, b) for w, b in P.sweep_pairs()],
    output:
        summary=P.stats("reuse_summary.parquet"),
        md=report(P.stats("reuse_summary.md"), caption=str(caption_path("reuse_summary")), category="Tables"),
        cdfs=P.stats("reuse_cdfs.parquet"),
    params:
        traces=pair_args("trace", P.sweep_pairs(), P.trace),
    resources:
        mem_mb=4000,
    log:
        P.log("stats", "reuse_stats"),
    benchmark:
        P.benchmark("stats", "reuse_stats")
    shell:
        "{STAGE} stats --config {input.cfg} {params.traces} --out {output.summary} --md {output.md} "
        "--cdfs {output.cdfs} > {log} 2>&1"

rule reuse_stats:
    """Reuse fraction, hits per block, reuse gaps, infinite-cache hit rate (polars)."""
    input:
        cfg=P.stage_config("stats"),
        traces=[P.trace(w, b) for w, b in P.sweep_pairs()],
    output:
        summary=P.stats("reuse_summary.parquet"),
        md=P.stats("reuse_summary.md"),
        cdfs=P.stats("reuse_cdfs.parquet"),
    params:
        traces=trace_args(P.sweep_pairs()),
    resources:
        mem_mb=4000,
    log:
        P.stage("stats") / "logs/reuse_stats.log",
    benchmark:
        P.stage("stats") / "benchmarks/reuse_stats.tsv"
    shell:
        "{STAGE} stats --config {input.cfg} {params.traces} --out {output.summary} --md {output.md} "
        "--cdfs {output.cdfs} > {log} 2>&1"

MIX_PAIRS = [(w, int(CFG.mix.block_size)) for w in P.mixed_workloads()]


rule mixed:
    """Interleaved trace of all workloads: baseline LRU/FIFO vs workload-aware LRU."""
    input:
        cfg=P.stage_config("mixed"),
        traces=[P.trace(w, b) for w, b in MIX_PAIRS],
    output:
        table=P.mixed("hit_rates.parquet"),
        md=report(P.mixed("hit_rates.md"), caption=str(caption_path("mixed")), category="Tables"),
    params:
        traces=pair_args("trace", MIX_PAIRS, P.trace),
    resources:
        mem_mb=4000,
    log:
        P.log("mixed", "mixed"),
    benchmark:
        P.benchmark("mixed", "mixed")
    shell:
        "{STAGE} mixed --config {input.cfg} {params.traces} --out {output.table} --md {output.md} > {log} 2>&1"

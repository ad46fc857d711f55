rule mixed:
    """Interleaved trace of all workloads: baseline LRU/FIFO vs workload-aware LRU."""
    input:
        cfg=P.stage_config("mixed"),
        traces=[P.trace(w, int(CFG.mix.block_size)) for w in P.mixed_workloads()],
    output:
        table=P.mixed("hit_rates.parquet"),
        md=P.mixed("hit_rates.md"),
    params:
        mix=lambda w: OmegaConf.to_container(CFG.mix),
        traces=trace_args([(w, int(CFG.mix.block_size)) for w in P.mixed_workloads()]),
    resources:
        mem_mb=4000,
    log:
        P.stage("mixed") / "logs/mixed.log",
    benchmark:
        P.stage("mixed") / "benchmarks/mixed.tsv"
    shell:
        "{STAGE} mixed --config {input.cfg} {params.traces} --out {output.table} --md {output.md} > {log} 2>&1"

rule replay:
    """Cache replays: policy x semantics x capacity over every trace of the sweep."""
    input:
        cfg=P.stage_config("replay"),
        traces=[P.trace(w, b) for w, b in P.sweep_pairs()],
    output:
        table=P.replay("hit_rates.parquet"),
        md=P.replay("hit_rates.md"),
    params:
        sweep=lambda w: OmegaConf.to_container(CFG.sweep),
        traces=trace_args(P.sweep_pairs()),
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        P.stage("replay") / "logs/replay.log",
    benchmark:
        P.stage("replay") / "benchmarks/replay.tsv"
    shell:
        "{STAGE} replay --config {input.cfg} {params.traces} --out {output.table} --md {output.md} > {log} 2>&1"

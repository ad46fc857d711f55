rule replay:
    """Cache replays: policy x semantics x capacity over every trace of the sweep,
    hit-rate curves (one pass for LRU, a capacity grid for the rest), and the
    prefix LRU replay at the engine's own capacity."""
    input:
        cfg=P.stage_config("replay"),
        traces=[P.trace(w, b) for w, b in P.sweep_pairs()],
        engine_traces=[P.trace(w, b) for w, b in P.engine_pairs()],
    output:
        table=P.replay("hit_rates.parquet"),
        md=report(P.replay("hit_rates.md"), caption=str(caption_path("hit_rates")), category="Tables"),
        engine_capacity=P.replay("engine_capacity.parquet"),
        curves=P.replay("curves.parquet"),
    params:
        traces=pair_args("trace", P.sweep_pairs(), P.trace),
        engine_traces=pair_args("engine-trace", P.engine_pairs(), P.trace),
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        P.log("replay", "replay"),
    benchmark:
        P.benchmark("replay", "replay")
    shell:
        "{STAGE} replay --config {input.cfg} {params.traces} {params.engine_traces} --out {output.table} "
        "--md {output.md} --engine-capacity {output.engine_capacity} --curves {output.curves} > {log} 2>&1"

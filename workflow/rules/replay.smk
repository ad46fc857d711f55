rule replay:
    """Cache replays: policy x semantics x capacity over every trace of the sweep,
    hit-rate curves (one pass for LRU, a capacity grid for the rest), the
    prefix LRU replay at the engine's own capacity, and every engine run (the
    capacity sweep's included) beside its batched and sequential replays."""
    input:
        cfg=P.stage_config("replay"),
        traces=[P.trace(w, b) for w, b in P.sweep_pairs()],
        engine_traces=[P.trace(w, b) for w, b in P.engine_pairs()],
        engine_run_traces=[P.engine_run_trace(*r) for r in P.engine_runs()],
        engine_runs=[P.engine_run_dir(*r) / f for r in P.engine_runs()
                     for f in ("requests.parquet", "kv_events.parquet", "schedule.parquet", "run.json")],
    output:
        table=P.replay("hit_rates.parquet"),
        md=report(P.replay("hit_rates.md"), caption=str(caption_path("hit_rates")), category="Tables"),
        engine_capacity=P.replay("engine_capacity.parquet"),
        curves=P.replay("curves.parquet"),
        engine_sweep=P.replay("engine_sweep.parquet"),
        engine_sweep_md=report(P.replay("engine_sweep.md"), caption=str(caption_path("engine_sweep")),
                               category="Tables"),
    params:
        traces=pair_args("trace", P.sweep_pairs(), P.trace),
        engine_traces=pair_args("engine-trace", P.engine_pairs(), P.trace),
        engine_runs=" ".join(f"--engine-run {r}:{b}:{c}={P.engine_run_dir(r, b, c)},{P.engine_run_trace(r, b, c)}"
                             for r, b, c in P.engine_runs()),
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        P.log("replay", "replay"),
    benchmark:
        P.benchmark("replay", "replay")
    shell:
        "{STAGE} replay --config {input.cfg} {params.traces} {params.engine_traces} --out {output.table} "
        "--md {output.md} --engine-capacity {output.engine_capacity} --curves {output.curves} "
        "{params.engine_runs} --engine-sweep {output.engine_sweep} --engine-sweep-md {output.engine_sweep_md} > {log} 2>&1"

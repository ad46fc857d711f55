#: (run, block size, capacity, engine run directory, its block trace) of every
#: engine run, the capacity sweep's included (replay.engine_sweep.EngineRunFiles).
ENGINE_RUNS = [(r, b, c, P.engine_run_dir(r, b, c), P.engine_run_trace(r, b, c)) for r, b, c in P.engine_runs()]


def report_table(path, caption):
    return report(path, caption=str(caption_path(caption)), category="Tables")


rule replay:
    """Cache replays: policy x semantics x capacity over every trace of the sweep
    (hit rates, and per-request hits of the prefix replays for the savings stage),
    hit-rate curves (one pass for LRU, a capacity grid for the rest), and every
    engine-versus-replay check: the prefix LRU replay at the engine's own
    capacity beside vLLM, and every engine run (the capacity sweep's included)
    beside its batched and sequential replays."""
    input:
        cfg=P.stage_config("replay"),
        traces=list(SWEEP_TRACES.values()),
        engine_traces=list(ENGINE_TRACES.values()),
        engine_requests=list(ENGINE_REQUESTS.values()),
        engine_runs=[Path(d) / f for _, _, _, d, _ in ENGINE_RUNS for f in ENGINE_RUN_FILES],
        engine_run_traces=[t for *_, t in ENGINE_RUNS],
    output:
        table=P.replay("hit_rates.parquet"),
        md=report_table(P.replay("hit_rates.md"), "hit_rates"),
        per_request=P.replay("per_request.parquet"),
        curves=P.replay("curves.parquet"),
        engine_capacity=P.replay("engine_capacity.parquet"),
        engine_vs_replay=P.replay("engine_vs_replay.parquet"),
        engine_vs_replay_md=report_table(P.replay("engine_vs_replay.md"), "engine_vs_replay_table"),
        engine_sweep=P.replay("engine_sweep.parquet"),
        engine_sweep_md=report_table(P.replay("engine_sweep.md"), "engine_sweep"),
    params:
        stage="replay",
        traces=SWEEP_TRACES,
        engine_traces=ENGINE_TRACES,
        engine_requests=ENGINE_REQUESTS,
        engine_runs=ENGINE_RUNS,
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        P.log("replay", "replay"),
    benchmark:
        P.benchmark("replay", "replay")
    script:
        STAGE_SCRIPT

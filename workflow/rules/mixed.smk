#: {workload: trace at mix.block_size}, in the order the workloads take turns.
MIX_TRACES = {w: P.trace(w, int(CFG.mix.block_size)) for w in P.mixed_workloads()}


rule mixed:
    """Interleaved trace of all workloads: baseline LRU/FIFO vs workload-aware LRU,
    and the per-request hits of its prefix replays (priced by the savings stage)."""
    input:
        cfg=P.stage_config("mixed"),
        traces=list(MIX_TRACES.values()),
    output:
        table=P.mixed("hit_rates.parquet"),
        md=report(P.mixed("hit_rates.md"), caption=str(caption_path("mixed")), category="Tables"),
        per_request=P.mixed("per_request.parquet"),
    params:
        stage="mixed",
        traces=MIX_TRACES,
    resources:
        mem_mb=4000,
    log:
        P.log("mixed", "mixed"),
    benchmark:
        P.benchmark("mixed", "mixed")
    script:
        STAGE_SCRIPT

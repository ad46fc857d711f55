# Savings stage: block sizes at equal memory, what each hit buys (prefill FLOPs,
# TTFT) for the named model and GPU, and under engine.clock=cost_model the
# engine's TTFT with vs without prefix caching (the engine stage's runs).
# It prices the per-request hits the replay and mixed stages wrote.
from prefix_study.savings.plan import comparison_block_size, compare_workloads

SAVINGS_BS = comparison_block_size(CFG)
# Only under the cost-model clock do engine times read as a real GPU's.
SAVINGS_COMPARE = compare_workloads(CFG, P.engine_workloads) if CFG.engine.clock == "cost_model" else []
#: {workload: engine run directory} with prefix caching on and off.
SAVINGS_ENGINE = {w: P.engine_dir(w, SAVINGS_BS) for w in SAVINGS_COMPARE}
SAVINGS_NO_CACHE = {w: P.engine_no_cache_dir(w, SAVINGS_BS) for w in SAVINGS_COMPARE}


def savings_outputs():
    table = lambda name: report(P.savings(f"{name}.md"), caption=str(caption_path(name)), category="Tables")
    out = {"savings": P.savings("savings.parquet"), "savings_md": table("savings"),
           "equal": P.savings("equal_memory.parquet"), "equal_md": table("equal_memory")}
    if SAVINGS_COMPARE:
        out |= {"ttft": P.savings("engine_ttft.parquet"), "ttft_md": table("engine_ttft")}
    return out


rule savings:
    """Prefill FLOPs and TTFT saved per replay (priced from per-request hits),
    equal-memory comparison, engine TTFT comparison."""
    input:
        cfg=P.stage_config("savings"),
        streams=list(ENGINE_STREAMS.values()),
        hit_rates=P.replay("hit_rates.parquet"),
        per_request=P.replay("per_request.parquet"),
        mixed_per_request=P.mixed("per_request.parquet"),
        engine=[Path(d) / "requests.parquet" for d in SAVINGS_ENGINE.values()],
        no_cache=[Path(d) / "requests.parquet" for d in SAVINGS_NO_CACHE.values()],
    output:
        **savings_outputs(),
    params:
        stage="savings",
        streams=ENGINE_STREAMS,
        engine=SAVINGS_ENGINE,
        engine_no_cache=SAVINGS_NO_CACHE,
        out_dir=P.stage("savings"),
    resources:
        mem_mb=4000,
    log:
        P.log("savings", "savings"),
    benchmark:
        P.benchmark("savings", "savings")
    script:
        STAGE_SCRIPT

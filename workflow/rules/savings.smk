# Savings stage: block sizes at equal memory, what each hit buys (prefill FLOPs,
# TTFT) for the named model and GPU, and under engine.clock=cost_model the
# engine's TTFT with vs without prefix caching.
from prefix_study.report.captions import SAVINGS_ENGINE_FIGURES, SAVINGS_FIGURES
from prefix_study.savings.stage import comparison_block_size, compare_workloads

SAVINGS_BS = comparison_block_size(CFG)
# Only under the cost-model clock do engine times read as a real GPU's.
SAVINGS_COMPARE = compare_workloads(CFG, P.engine_workloads) if CFG.engine.clock == "cost_model" else []
SAVINGS_MIXED_PAIRS = [(w, int(CFG.mix.block_size)) for w in P.mixed_workloads()]


def no_cache_dir(w, bs):
    return P.savings("engine_no_prefix_caching") / w / f"b{bs}"


rule savings_engine:
    """One workload through vLLM with prefix caching off (the TTFT comparison's baseline)."""
    input:
        cfg=P.stage_config("savings"),
        stream=P.workload_stream("{workload}"),
        model=P.model_dir,
    output:
        requests=P.savings("engine_no_prefix_caching/{workload}/b{bs}/requests.parquet"),
        kv_events=P.savings("engine_no_prefix_caching/{workload}/b{bs}/kv_events.parquet"),
        meta=P.savings("engine_no_prefix_caching/{workload}/b{bs}/run.json"),
    params:
        out=lambda w: no_cache_dir(w.workload, w.bs),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        P.log("savings", "engine_no_prefix_caching_{workload}_b{bs}"),
    benchmark:
        P.benchmark("savings", "engine_no_prefix_caching_{workload}_b{bs}")
    shell:
        "{STAGE} engine --no-prefix-caching --config {input.cfg} --workload-file {input.stream} --model {input.model} "
        "--block-size {wildcards.bs} --out {params.out} > {log}"


def cost_outputs():
    figure = lambda name: report(P.savings(f"{name}.png"), caption=str(caption_path(name)), category="Savings")
    table = lambda name: report(P.savings(f"{name}.md"), caption=str(caption_path(name)), category="Tables")
    out = {name: figure(name) for name in SAVINGS_FIGURES}
    out |= {"savings": P.savings("savings.parquet"), "savings_md": table("savings"),
            "equal": P.savings("equal_memory.parquet"), "equal_md": table("equal_memory")}
    if SAVINGS_COMPARE:
        out |= {name: figure(name) for name in SAVINGS_ENGINE_FIGURES}
        out |= {"ttft": P.savings("engine_ttft.parquet"), "ttft_md": table("engine_ttft")}
    return out


rule savings:
    """Prefill FLOPs and TTFT saved per replay, equal-memory comparison, engine TTFT comparison."""
    input:
        cfg=P.stage_config("savings"),
        traces=[P.trace(w, b) for w, b in P.sweep_pairs()],
        mixed_traces=[P.trace(w, b) for w, b in SAVINGS_MIXED_PAIRS],
        workloads=[P.workload_stream(w) for w in P.engine_workloads],
        hit_rates=P.replay("hit_rates.parquet"),
        mixed=P.mixed("hit_rates.parquet"),
        engine=[P.engine_file(w, SAVINGS_BS, "requests.parquet") for w in SAVINGS_COMPARE],
        no_cache=[no_cache_dir(w, SAVINGS_BS) / "requests.parquet" for w in SAVINGS_COMPARE],
    output:
        **cost_outputs(),
    params:
        traces=pair_args("trace", P.sweep_pairs(), P.trace),
        mixed_traces=pair_args("mixed-trace", SAVINGS_MIXED_PAIRS, P.trace),
        workloads=" ".join(f"--workload {w}={P.workload_stream(w)}" for w in P.engine_workloads),
        engine=pair_args("engine", [(w, SAVINGS_BS) for w in SAVINGS_COMPARE], P.engine_dir),
        no_cache=pair_args("engine-no-cache", [(w, SAVINGS_BS) for w in SAVINGS_COMPARE], no_cache_dir),
        out=P.stage("savings"),
    resources:
        mem_mb=4000,
    log:
        P.log("savings", "savings"),
    benchmark:
        P.benchmark("savings", "savings")
    shell:
        "{STAGE} savings --config {input.cfg} {params.traces} {params.mixed_traces} {params.workloads} "
        "--hit-rates {input.hit_rates} --mixed {input.mixed} {params.engine} {params.no_cache} "
        "--out-dir {params.out} > {log} 2>&1"

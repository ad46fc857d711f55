from prefix_study.report.captions import ENGINE_TTFT_FIGURES, TIER_FIGURES

#: Every figure of the run (the engine TTFT one under engine.clock=cost_model,
#: the tier ones with a tier below GPU memory).
RUN_FIGURES = {**FIGURES, **(ENGINE_TTFT_FIGURES if SAVINGS_COMPARE else {}),
               **(TIER_FIGURES if P.tiers_run else {})}


rule figures:
    """Every plot of the run (PNG + SVG, one style), drawn from the tables of the
    stats, replay, mixed, savings, cluster and tiers stages; it computes nothing."""
    input:
        cfg=P.stage_config("figures"),
        reuse_cdfs=P.stats("reuse_cdfs.parquet"),
        reuse_summary=P.stats("reuse_summary.parquet"),
        hit_rates=P.replay("hit_rates.parquet"),
        curves=P.replay("curves.parquet"),
        engine_vs_replay=P.replay("engine_vs_replay.parquet"),
        engine_sweep=P.replay("engine_sweep.parquet"),
        mixed=P.mixed("hit_rates.parquet"),
        savings=P.savings("savings.parquet"),
        cluster=P.cluster("cluster.parquet"),
        **({"engine_ttft": P.savings("engine_ttft.parquet")} if SAVINGS_COMPARE else {}),
        **({"tiers": P.tiers("tiers.parquet")} if P.tiers_run else {}),
    output:
        **{name: report(P.figure(name), caption=str(caption_path(stem)), category="Figures")
           for name, stem in RUN_FIGURES.items()},
    params:
        stage="figures",
        out_dir=P.stage("figures"),
    log:
        P.log("figures", "figures"),
    benchmark:
        P.benchmark("figures", "figures")
    script:
        STAGE_SCRIPT

rule figures:
    """All plots (PNG + SVG, one style) and the engine-vs-replay table."""
    input:
        cfg=P.stage_config("figures"),
        cdfs=P.stats("reuse_cdfs.parquet"),
        summary=P.stats("reuse_summary.parquet"),
        hit_rates=P.replay("hit_rates.parquet"),
        curves=P.replay("curves.parquet"),
        mixed=P.mixed("hit_rates.parquet"),
        engine_capacity=P.replay("engine_capacity.parquet"),
        engine_sweep=P.replay("engine_sweep.parquet"),
        engine=[P.engine_file(w, b, "requests.parquet") for w, b in P.engine_pairs()],
    output:
        **{name: report(P.figure(name), caption=str(caption_path(stem)), category="Figures")
           for name, stem in FIGURES.items()},
        engine_table=P.figures_file("engine_vs_replay.parquet"),
        engine_md=report(P.figures_file("engine_vs_replay.md"), caption=str(caption_path(TABLES["figures", "engine_vs_replay.md"])),
                         category="Tables"),
    params:
        engine=pair_args("engine-requests", P.engine_pairs(), lambda w, b: P.engine_file(w, b, "requests.parquet")),
        out=P.stage("figures"),
    log:
        P.log("figures", "figures"),
    benchmark:
        P.benchmark("figures", "figures")
    shell:
        "{STAGE} figures --config {input.cfg} --reuse-cdfs {input.cdfs} --reuse-summary {input.summary} "
        "--hit-rates {input.hit_rates} --curves {input.curves} --mixed {input.mixed} --engine-capacity {input.engine_capacity} "
        "--engine-sweep {input.engine_sweep} "
        "{params.engine} --out-dir {params.out} > {log} 2>&1"

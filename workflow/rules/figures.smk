ENGINE_PAIRS = [(w, b) for w in P.engine_workloads for b in P.engine_block_sizes]


def figure_output(name):
    return report(P.figure(name), caption=f"../report/{name}.rst", category="Figures")


rule figures:
    """All plots (PNG + SVG, one style) and the engine-vs-replay table."""
    input:
        cfg=P.stage_config("figures"),
        cdfs=P.stats("reuse_cdfs.parquet"),
        summary=P.stats("reuse_summary.parquet"),
        hit_rates=P.replay("hit_rates.parquet"),
        mixed=P.mixed("hit_rates.parquet"),
        engine=[P.engine_dir(w, b) / "requests.parquet" for w, b in ENGINE_PAIRS],
        traces=[P.trace(w, b) for w, b in ENGINE_PAIRS],
    output:
        **{name: figure_output(name) for name in FIGURES},
        engine_table=P.stage("figures") / "engine_vs_replay.parquet",
        engine_md=P.stage("figures") / "engine_vs_replay.md",
    params:
        engine=" ".join(f"--engine {w}:{b}={P.engine_dir(w, b)}" for w, b in ENGINE_PAIRS),
        traces=trace_args(ENGINE_PAIRS),
        out=lambda w, output: os.path.dirname(output.engine_table),
    log:
        P.stage("figures") / "logs/figures.log",
    benchmark:
        P.stage("figures") / "benchmarks/figures.tsv"
    shell:
        "{STAGE} figures --config {input.cfg} --reuse-cdfs {input.cdfs} --reuse-summary {input.summary} "
        "--hit-rates {input.hit_rates} --mixed {input.mixed} {params.engine} {params.traces} "
        "--out-dir {params.out} > {log} 2>&1"

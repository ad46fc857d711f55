def benchmark_files():
    stages = ("assets", "workloads", "engine", "traces", "stats", "replay", "mixed", "figures")
    return [f for s in stages for f in sorted((P.stage(s) / "benchmarks").glob("*.tsv"))]


rule run_index:
    """results/runs/<experiment>-<hash>/: resolved config, index.md, stage times, tables."""
    input:
        figures=[P.figure(n) for n in FIGURES],
        engine_md=P.stage("figures") / "engine_vs_replay.md",
        summary_md=report(P.stats("reuse_summary.md"), caption="../report/reuse_summary.rst", category="Tables"),
        replay_md=report(P.replay("hit_rates.md"), caption="../report/hit_rates.rst", category="Tables"),
        mixed_md=report(P.mixed("hit_rates.md"), caption="../report/mixed.rst", category="Tables"),
        workloads=[P.stage("workloads") / f"{w}.summary.json" for w in P.engine_workloads],
        checks=[P.trace_check(w, b) for w, b in P.trace_pairs()],
    output:
        index=P.run / "index.md",
        config=P.run / "config.yaml",
        times=P.run / "stage_times.csv",
    localrule: True
    run:
        from prefix_study.report.index import write_run_index

        write_run_index(CFG, P, benchmark_files())

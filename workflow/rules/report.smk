rule run_index:
    """results/runs/<experiment>-<hash>/: resolved config, index.md, stage times."""
    input:
        figures=[P.figure(n) for n in RUN_FIGURES],
        tables=[P.stage(stage) / name for stage, name in {**TABLES, **RUN_TIER_TABLES}],
        workloads=[P.workload_summary(w) for w in P.engine_workloads],
        checks=[P.trace_check(w, b) for w, b in P.trace_pairs()],
        blocks=[P.trace_blocks(w, b) for w, b in P.engine_pairs()],
    output:
        index=P.run / "index.md",
        config=P.run / "config.yaml",
        times=P.run / "stage_times.csv",
    localrule: True
    run:
        from prefix_study.report.stage import run as write_run

        write_run(CFG, P)


rule report_html:
    """One self-contained HTML report (Snakemake's): every figure and table
    marked with report(...) in the rules, with its caption."""
    input:
        index=P.run / "index.md",
    output:
        P.report_html,
    localrule: True
    log:
        P.run / "report.log",
    run:
        from prefix_study.report.stage import html

        html(workflow.main_snakefile, CFG.overrides, output[0], input.index, log[0])

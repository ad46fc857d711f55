# Tiers stage: every ShareGPT workload (at mix.block_size), their mix and each
# imported trace through GPU memory and the tiers below it; the break-even
# bandwidth table. Only with a tier below GPU memory (P.tiers_run): under
# gpu_only it would repeat the replay stage's single-tier replay.
from prefix_study.report.captions import TIER_TABLES

#: {workload: trace at mix.block_size}, the mixed stage's, in mixing order;
#: {imported trace at another block size: its trace}; the ShareGPT streams (prompt lengths).
TIER_TRACES = {w: P.trace(w, int(CFG.mix.block_size)) for w in P.mixed_workloads()}
TIER_EXTERNAL = {w: P.trace(w, P.external_block_size(w)) for w in P.external_workloads if w not in TIER_TRACES}
TIER_STREAMS = {w: ENGINE_STREAMS[w] for w in TIER_TRACES if w in ENGINE_STREAMS}
#: Tables of this run's tiers stage (none under gpu_only).
RUN_TIER_TABLES = TIER_TABLES if P.tiers_run else {}


if P.tiers_run:

    rule tiers:
        """Tokens per tier, bytes per link, write amplification, TTFT with load
        time, per workload and sweep point; the break-even bandwidth table."""
        input:
            cfg=P.stage_config("tiers"),
            traces=list(TIER_TRACES.values()),
            external=list(TIER_EXTERNAL.values()),
            streams=list(TIER_STREAMS.values()),
        output:
            table=P.tiers("tiers.parquet"),
            md=report(P.tiers("tiers.md"), caption=str(caption_path("tiers")), category="Tables"),
            break_even=P.tiers("break_even.parquet"),
            break_even_md=report(P.tiers("break_even.md"), caption=str(caption_path("break_even")),
                                 category="Tables"),
        params:
            stage="tiers",
            traces=TIER_TRACES,
            external=TIER_EXTERNAL,
            streams=TIER_STREAMS,
            out_dir=P.stage("tiers"),
        resources:
            mem_mb=4000,
        log:
            P.log("tiers", "tiers"),
        benchmark:
            P.benchmark("tiers", "tiers")
        script:
            STAGE_SCRIPT

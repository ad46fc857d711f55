# prefix-study: dataset -> workloads -> vLLM engine -> block traces -> statistics,
# replays, mixed workload -> savings, cluster -> figures -> run index and report.
# Every stage rule runs workflow/scripts/stage.py (`script:`): its inputs,
# outputs and params reach the stage as one Job, no shell line.
#
# Configuration is Hydra's (conf/), composed here; pass overrides with
#   snakemake --cores 2 --config 'overrides=["sweep.capacities=[64,1024]","sweep.policies=[lru]"]'
# (a list of Hydra overrides; `prefix-study sweep.capacities=[64,1024] ...` writes it for you).
# Every stage writes under results/<stage>/<hash of the config it depends on>/;
# every path comes from PipelinePaths (src/prefix_study/pipeline.py).
from snakemake.utils import min_version

min_version("9.0")

from prefix_study import env

env.apply()  # jobs inherit it

from prefix_study.run_locks import release_own_locks

release_own_locks()  # a run that ends leaves other runs' locks in place

from prefix_study.pipeline import PipelinePaths, run_config
from prefix_study.report.captions import FIGURES, TABLES, caption_path

# The config `prefix-study` composed for this run (--config composed=...), or
# composed here from the overrides (snakemake run by hand).
CFG = run_config(config)
P = PipelinePaths(CFG)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/assets.smk"
include: "workflow/rules/workloads.smk"
include: "workflow/rules/engine.smk"
include: "workflow/rules/traces.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/replay.smk"
include: "workflow/rules/mixed.smk"
include: "workflow/rules/savings.smk"
include: "workflow/rules/cluster.smk"
include: "workflow/rules/tiers.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


def run_files():
    """Every file a stage rule of this run makes or reads (rules without
    wildcards; the wildcard rules' files are their inputs). As inputs of the
    target, a file lost since it was made (a killed rerun, a deletion) is
    rebuilt, with everything after it, instead of Snakemake finding nothing
    to do because the files made from it are newer."""
    files = set()
    for r in workflow.rules:
        if r.name != "all" and not r.has_wildcards():
            files.update(str(f) for f in (*r.output, *r.input) if isinstance(f, str))
    return sorted(files)


rule all:
    default_target: True
    input:
        P.run / "index.md",
        P.report_html,
        run_files(),

# Shared helpers: each stage's resolved config is written once into its
# directory; jobs read it from there (only the keys the stage hash covers
# are used, so a later run with the same hash reads the same values).
# A config change gives a stage a new directory (its hash), so no rule needs
# `params` to trigger re-runs.
#
# Every stage rule runs STAGE_SCRIPT (Snakemake's `script:`): the job gets its
# named inputs, outputs and params as Python objects (prefix_study.stages.Job),
# so no shell line is built from config values. A mapping such as
# {(workload, block size): trace} is named once, below, and gives both the
# rule's `input` (its values) and the stage's `params` (the mapping).
from omegaconf import OmegaConf

from prefix_study.config.hashing import STAGES
from prefix_study.config.schema import WORKLOAD_NAME_PATTERN

STAGE_SCRIPT = "../scripts/stage.py"


wildcard_constraints:
    stage="|".join(STAGES),
    hash="[0-9a-f]{10}",
    workload=WORKLOAD_NAME_PATTERN,
    bs="[0-9]+",


#: Request stream of every engine workload (engine and savings stages).
ENGINE_STREAMS = {w: P.workload_stream(w) for w in P.engine_workloads}
#: Traces of the sweep (stats, replay) and at the engine's block sizes (replay).
SWEEP_TRACES = {(w, b): P.trace(w, b) for w, b in P.sweep_pairs()}
ENGINE_TRACES = {(w, b): P.trace(w, b) for w, b in P.engine_pairs()}
#: The engine's per-request records of every (workload, engine block size).
ENGINE_REQUESTS = {(w, b): P.engine_file(w, b, "requests.parquet") for w, b in P.engine_pairs()}


rule stage_config:
    output:
        P.stage_config_pattern,
    localrule: True
    run:
        from prefix_study.io import write_text

        write_text(OmegaConf.to_yaml(CFG, resolve=True), output[0])

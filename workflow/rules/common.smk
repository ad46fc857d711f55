# Shared helpers: each stage's resolved config is written once into its
# directory; jobs read it from there (only the keys the stage hash covers
# are used, so a later run with the same hash reads the same values).
# A config change gives a stage a new directory (its hash), so no rule needs
# `params` to trigger re-runs.
from omegaconf import OmegaConf

from prefix_study.config.hashing import STAGES
from prefix_study.config.schema import WORKLOAD_NAME_PATTERN


wildcard_constraints:
    stage="|".join(STAGES),
    hash="[0-9a-f]{10}",
    workload=WORKLOAD_NAME_PATTERN,
    bs="[0-9]+",


def pair_args(option, pairs, path):
    """`--option workload:bs=path` arguments for a list of (workload, bs)."""
    return " ".join(f"--{option} {w}:{b}={path(w, b)}" for w, b in pairs)


rule stage_config:
    output:
        P.stage_config_pattern,
    localrule: True
    run:
        from prefix_study.io import write_text

        write_text(OmegaConf.to_yaml(CFG, resolve=True), output[0])

# The `script:` of every stage rule: hands the rule's named inputs, outputs,
# params (params.stage names the stage) and wildcards to the stage as one Job
# (src/prefix_study/stages.py). No shell line is built from paths or config.
from prefix_study.stages import Job, run_job

run_job(Job.from_snakemake(snakemake))  # noqa: F821 (set by Snakemake)

"""Report stage: the run directory `runs/<experiment>-<hash>/`.

`run` (rule `run_index`) writes the resolved config, `index.md` and the stage
times; `html` (rule `report_html`) has Snakemake build `report.html` from the
rules' `report(...)` outputs and the captions in workflow/report/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Sequence

from prefix_study.config.schema import PrefixStudyConfig
from prefix_study.pipeline import PipelinePaths, config_arg
from prefix_study.report.index import write_run_index


def run(cfg: PrefixStudyConfig, paths: PipelinePaths) -> Path:
    """Write `config.yaml`, `index.md` and `stage_times.csv` of the run."""
    return write_run_index(cfg, paths, paths.benchmark_files())


def html_command(snakefile: str | Path, overrides: Sequence[str], out: str | Path,
                 target: str | Path) -> list[str]:
    """`snakemake --report` for the DAG up to `target`, with the run's overrides.

    It builds the DAG without locking the working directory, so the running
    workflow can call it as a job.
    """
    return [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--cores", "1",
            "--report", str(out), str(target),
            "--config", config_arg(overrides)]


def html(snakefile: str | Path, overrides: Sequence[str], out: str | Path, target: str | Path,
         log: str | Path) -> Path:
    """Build `report.html` (self-contained: figures, tables, captions); Snakemake's
    messages go to `log`."""
    with open(log, "w") as fh:
        subprocess.run(html_command(snakefile, overrides, out, target), check=True,
                       stdout=fh, stderr=subprocess.STDOUT)
    return Path(out)

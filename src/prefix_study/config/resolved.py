"""A composed config as a file, read back without Hydra.

The command composes each run's config once and writes it here; every
Snakemake process of the run (the submitting one and each cluster job's)
reads that file instead of composing `conf/` again: Hydra's import and
composition cost ~0.5 CPU-s per process, and the jobs of one run all see
the config the command checked, even if `conf/` changes meanwhile.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from prefix_study.config.schema import PrefixStudyConfig
from prefix_study.config.validate import ConfigError, typed_workloads, validate


@cache
def _schema() -> DictConfig:
    """The structured schema as a config (merging copies it, never changes it)."""
    return OmegaConf.structured(PrefixStudyConfig)


def finish(cfg: Any, *more: Any) -> DictConfig:
    """Merge `cfg` (and `more`) onto the schema, type every workload by its kind, validate."""
    try:
        cfg = OmegaConf.merge(_schema(), cfg, *more)
        typed_workloads(cfg)
    except ConfigError:
        raise
    except Exception as exc:  # OmegaConf errors name the key already
        raise ConfigError(f"invalid configuration: {exc}") from exc
    validate(cfg)
    return cfg


def load_config(path: Path | str) -> DictConfig:
    """A config written by `write_config` (or a run's `config.yaml`), typed and validated."""
    return finish(OmegaConf.load(path))


def write_config(cfg: DictConfig, directory: Path | str) -> Path:
    """`directory/<content hash>.yaml`: one file per distinct config, so runs
    at once never overwrite each other's."""
    from prefix_study.io import atomic_path

    text = OmegaConf.to_yaml(cfg)
    path = Path(directory) / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.yaml"
    if not path.is_file() or path.read_text() != text:
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return path

"""Hydra configuration: typed schema, composition, validation, stage hashes."""

from prefix_study.config.compose import CONF_DIR, compose_config, load_config
from prefix_study.config.hashing import stage_dir, stage_hash, stage_key
from prefix_study.config.validate import ConfigError, validate

__all__ = [
    "CONF_DIR",
    "ConfigError",
    "compose_config",
    "load_config",
    "stage_dir",
    "stage_hash",
    "stage_key",
    "validate",
]

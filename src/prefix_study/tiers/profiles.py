"""Named model and GPU profiles (conf/model, conf/hardware) beside the
config's own: the tiers stage's break-even table covers several of each
(`tiers.study.break_even_models`, `break_even_hardware`). The stage hash
covers these files' text (config/hashing.py, key `tiers:lower`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefix_study.config.inputs import CONF_DIR


def conf_file(group: str, name: str) -> Path:
    """conf/<group>/<name>.yaml."""
    return CONF_DIR / group / f"{name}.yaml"


def conf_names(group: str) -> list[str]:
    """The names of conf/<group>/*.yaml (models, GPUs)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def named_profiles(group: str, names: list[str], own: Any) -> list[Any]:
    """The config nodes of conf/<group>/<name>.yaml on the schema (the
    config's own node for its own name; no names: the config's own)."""
    from omegaconf import OmegaConf

    from prefix_study.config.schema import HardwareProfileConfig, ModelProfileConfig

    schema = {"model": ModelProfileConfig, "hardware": HardwareProfileConfig}[group]
    out = []
    for name in names or [str(own.name)]:
        if name == str(own.name):
            out.append(own)
            continue
        node = OmegaConf.load(conf_file(group, name))
        out.append(OmegaConf.merge(OmegaConf.structured(schema), {k: v for k, v in node.items() if k != "defaults"}))
    return out

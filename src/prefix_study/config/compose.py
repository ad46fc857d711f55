"""Compose `conf/` with Hydra's compose API and check it against the schema."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from prefix_study.config.schema import (
    EngineConfig,
    MixConfig,
    PrefixStudyConfig,
    SweepConfig,
    WorkloadConfig,
)
from prefix_study.config.validate import ConfigError, validate

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


def register_schema() -> None:
    """Register the structured schema so YAML files are typed by it."""
    cs = ConfigStore.instance()
    cs.store(name="prefix_study_schema", node=PrefixStudyConfig)
    cs.store(group="engine", name="engine_schema", node=EngineConfig)
    cs.store(group="workload", name="workload_schema", node=WorkloadConfig)
    cs.store(group="sweep", name="sweep_schema", node=SweepConfig)
    cs.store(group="mix", name="mix_schema", node=MixConfig)


def compose_config(
    overrides: list[str] | tuple[str, ...] = (),
    config_name: str = "config",
    conf_dir: Path | str | None = None,
) -> DictConfig:
    """Compose and validate the config; raise ConfigError naming a bad key."""
    register_schema()
    conf_dir = Path(conf_dir or CONF_DIR).resolve()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=list(overrides))
    except Exception as exc:  # Hydra/OmegaConf errors name the key already
        raise ConfigError(f"invalid configuration: {exc}") from exc
    finally:
        GlobalHydra.instance().clear()
    cfg = OmegaConf.merge(OmegaConf.structured(PrefixStudyConfig), cfg)
    OmegaConf.update(cfg, "overrides", list(overrides), force_add=True)
    validate(cfg)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def load_config(path: Path | str) -> DictConfig:
    """Load a resolved config written by a run (`config.yaml`)."""
    cfg = OmegaConf.merge(OmegaConf.structured(PrefixStudyConfig), OmegaConf.load(path))
    validate(cfg)
    return cfg

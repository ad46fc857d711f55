"""Compose `conf/` with Hydra's compose API and check it against the schema."""

from __future__ import annotations

import copy
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from prefix_study.config.schema import (
    EXTERNAL_TRACE_KINDS,
    SHAREGPT_WORKLOAD_SCHEMAS,
    EngineConfig,
    ExternalTraceConfig,
    HardwareProfileConfig,
    MixConfig,
    ModelProfileConfig,
    PrefixStudyConfig,
    SweepConfig,
    TiersConfig,
)
from prefix_study.config.inputs import CONF_DIR
from prefix_study.config.overrides import check_additions, parse_overrides
from prefix_study.config.resolved import finish
from prefix_study.config.validate import ConfigError


_REGISTERED = False


def register_schema() -> None:
    """Register the structured schema so YAML files are typed by it.

    Each workload kind has its own node, `<kind>_schema` in group `workload`:
    conf/workload/qa.yaml starts with `defaults: [qa_schema]`. Once per process.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    _REGISTERED = True
    cs = ConfigStore.instance()
    cs.store(name="prefix_study_schema", node=PrefixStudyConfig)
    cs.store(group="engine", name="engine_schema", node=EngineConfig)
    cs.store(group="sweep", name="sweep_schema", node=SweepConfig)
    cs.store(group="mix", name="mix_schema", node=MixConfig)
    cs.store(group="model", name="model_schema", node=ModelProfileConfig)
    cs.store(group="hardware", name="hardware_schema", node=HardwareProfileConfig)
    cs.store(group="tiers", name="tiers_schema", node=TiersConfig)
    for kind, schema in SHAREGPT_WORKLOAD_SCHEMAS.items():
        cs.store(group="workload", name=f"{kind}_schema", node=schema)
    for kind in EXTERNAL_TRACE_KINDS:
        cs.store(group="workload", name=f"{kind}_schema", node=ExternalTraceConfig(kind=kind))


@contextmanager
def hydra_context(conf_dir: Path | str | None = None) -> Iterator[None]:
    """Hydra initialised on `conf_dir` (default conf/), cleared on exit."""
    register_schema()
    conf_dir = Path(conf_dir or CONF_DIR).resolve()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            yield
    finally:
        GlobalHydra.instance().clear()


def config_groups() -> set[str]:
    """The config groups of conf/ and of the schema (inside `hydra_context`)."""
    return set(GlobalHydra.instance().config_loader().list_groups("")) - {"hydra"}


#: Hydra's compositions of the defaults list in this process, by the state of
#: conf/ (every file's path, size and mtime), the config name and the group
#: overrides (`sweep=tiny`, `+workload@workloads.x=mooncake`). Composing is
#: most of the cost of a config (~0.3 s); the CLI, the Snakefile and the tests
#: ask for the same defaults many times with other values. Value overrides
#: (`sweep.capacities=[64]`) are applied to a copy afterwards, by the function
#: Hydra's own composition applies them with (`ConfigLoaderImpl.
#: _apply_overrides_to_config`, hydra-core 1.3 as pinned), in the same order. Validation
#: is not cached: it reads input files (traces, dataset) whose state may change.
_COMPOSED: dict[tuple, DictConfig] = {}


def _conf_state(conf_dir: Path) -> tuple:
    """Every file of conf/ with its size and mtime: an edit there is a new composition."""
    files = sorted(p for p in conf_dir.rglob("*") if p.is_file())
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def _compose(overrides: list[str], config_name: str, conf_dir: Path | str | None) -> DictConfig:
    """Hydra's composition: its defaults list shared by equal group overrides,
    the value overrides applied to a copy as Hydra applies them."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    conf = Path(conf_dir or CONF_DIR).resolve()
    with hydra_context(conf):
        parsed = parse_overrides(overrides)
        check_additions(parsed, config_groups())
        if any(o.is_sweep_override() for o in parsed):  # Hydra's compose says why it refuses
            return compose(config_name=config_name, overrides=overrides)
        repo = GlobalHydra.instance().config_loader().repository
        is_group = [repo.group_exists(o.key_or_group) and not isinstance(o.value(), dict) for o in parsed]
        groups = [o.input_line for o, g in zip(parsed, is_group) if g]
        key = (_conf_state(conf), config_name, tuple(groups))
        if key not in _COMPOSED:
            _COMPOSED[key] = compose(config_name=config_name, overrides=groups)
    cfg = copy.deepcopy(_COMPOSED[key])
    ConfigLoaderImpl._apply_overrides_to_config([o for o, g in zip(parsed, is_group) if not g], cfg)
    return cfg


def compose_config(
    overrides: list[str] | tuple[str, ...] = (),
    config_name: str = "config",
    conf_dir: Path | str | None = None,
) -> DictConfig:
    """Compose and validate the config; raise ConfigError naming a bad key."""
    overrides = list(overrides)
    try:
        composed = _compose(overrides, config_name, conf_dir)
    except ConfigError:
        raise
    except Exception as exc:  # Hydra/OmegaConf errors name the key already
        raise ConfigError(f"invalid configuration: {exc}") from exc
    cfg = finish(composed, {"overrides": overrides})
    OmegaConf.set_readonly(cfg, True)
    return cfg

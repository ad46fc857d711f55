"""Hydra overrides: read with Hydra's own public parser, checked, expanded into sweeps."""

from __future__ import annotations

import itertools
from typing import Any, Sequence

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException

from prefix_study.config.validate import ConfigError

#: How to pass several overrides to Snakemake directly.
SNAKEMAKE_HINT = ("pass a list: --config 'overrides=[\"sweep.capacities=[64,1024]\",\"sweep.policies=[lru]\"]' "
                  "(or use the prefix-study command, which does this)")


def parse_overrides(overrides: Sequence[str]) -> list[Override]:
    """Parse with Hydra's parser; inside `hydra_context` it also knows conf/'s
    groups, so `group=glob(*)` sweeps can be listed."""
    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
    try:
        return OverridesParser.create(config_loader=loader).parse_overrides(list(overrides))
    except HydraException as exc:
        raise ConfigError(f"invalid override: {exc}") from exc


def overrides_from_snakemake(value: Any) -> list[str]:
    """The overrides of Snakemake's `--config overrides=...`.

    A list of strings (what `prefix-study` passes, a JSON list that Snakemake
    reads back as these exact strings) or one override. A string holding
    several overrides is refused with the way to write them as a list.
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    text = str(value).strip()
    if not text:
        return []
    try:
        OverridesParser.create().parse_override(text)
    except HydraException as exc:
        raise ConfigError(f"--config overrides={text!r} is not one Hydra override ({exc}); "
                          + SNAKEMAKE_HINT) from exc
    return [text]


def check_additions(parsed: Sequence[Override], groups: set[str]) -> None:
    """Refuse `+key=value` / `++key=value` for anything but a config group.

    Hydra adds such keys past the schema (`+sweep.capacitie=[64]` would be
    accepted and change a stage hash). Adding a group option is what `+` is
    for, e.g. `+workload@workloads.mooncake=mooncake`.
    """
    for o in parsed:
        if (o.is_add() or o.is_force_add()) and o.key_or_group not in groups:
            raise ConfigError(
                f"{o.input_line}: `+` may only add an option of a config group "
                f"({', '.join(sorted(groups))}), e.g. +workload@workloads.<name>=mooncake; "
                f"{o.key_or_group!r} is not a group. Keys must exist in the schema "
                "(src/prefix_study/config/schema.py): set them without `+`"
            )


def expand_sweeps(parsed: Sequence[Override]) -> list[list[str]]:
    """The cartesian product of the sweeps (`key=a,b`, `key=range(..)`,
    `group=glob(*)`), in the order and form Hydra's basic sweeper gives."""
    choices: dict[str, list[str]] = {}
    for o in parsed:
        key = o.get_key_element()
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                raise ConfigError(f"{o.input_line}: only sweeps over listed values, range() or "
                                  "glob() can be expanded")
            try:
                choices[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
            except HydraException as exc:
                raise ConfigError(f"invalid sweep {o.input_line}: {exc}") from exc
        else:
            choices[key] = [f"{key}={o.get_value_element_as_str()}"]
    return [list(c) for c in itertools.product(*choices.values())]


def sweep_overrides(parsed: Sequence[Override]) -> list[Override]:
    return [o for o in parsed if o.is_sweep_override()]

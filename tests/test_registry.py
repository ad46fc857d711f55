"""Registries list their names from the entry files without importing them
(prefix_study/registry.py); what the files say must be what registers."""

from __future__ import annotations

import pytest

from prefix_study.registry import CACHE_REGISTRY, POLICY_REGISTRY, ROUTER_REGISTRY, TRACE_FORMAT_REGISTRY


def registered(registry) -> list[str]:
    """Names registered once every entry module is imported, in registration order."""
    registry.load_all()
    if registry is POLICY_REGISTRY:
        from prefix_study.replay.policies import POLICIES as table
    elif registry is ROUTER_REGISTRY:
        from prefix_study.cluster.routers import ROUTERS as table
    elif registry is CACHE_REGISTRY:
        from prefix_study.cluster.caches import CACHES as table
    else:
        from prefix_study.traces.formats import _FORMATS as table
    return list(table)


@pytest.mark.parametrize("registry", [POLICY_REGISTRY, ROUTER_REGISTRY, CACHE_REGISTRY, TRACE_FORMAT_REGISTRY],
                         ids=lambda r: r.what)
def test_names_read_from_the_files_are_the_registered_ones(registry):
    names = registry.names()
    assert names and sorted(names) == sorted(registered(registry))
    for name, module in registry.modules().items():
        assert module.startswith(registry.package + ".")


def test_an_unknown_name_is_refused_with_the_known_ones():
    from prefix_study.replay.policies import get_policy

    with pytest.raises(KeyError, match="unknown policy 'nope'; known: .*'lru'"):
        get_policy("nope")


def test_the_schema_spells_omegaconfs_missing_mark():
    from omegaconf import MISSING

    from prefix_study.config import schema

    assert schema.MISSING == MISSING

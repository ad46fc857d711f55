"""Configuration composes, and bad values fail before any work, naming the key."""

from __future__ import annotations

import pytest

from prefix_study.config import ConfigError, compose_config, stage_hash


def test_default_config_composes():
    cfg = compose_config()
    assert set(cfg.workloads) == {"chat_single", "chat_multi", "qa", "summarization"}
    assert list(cfg.engine.block_sizes) == [32, 64]
    assert list(cfg.sweep.block_sizes) == [16, 32, 64]


@pytest.mark.parametrize("override, key", [
    ("engine.block_sizes=[16]", "engine.block_sizes"),
    ("engine.block_sizes=[48]", "engine.block_sizes"),
    ("engine.capacity_blocks=0", "engine.capacity_blocks"),
    ("engine.capacity_blocks=-5", "engine.capacity_blocks"),
    ("engine.simulator=parrot", "engine.simulator"),
    ("engine.clock=sundial", "engine.clock"),
    ("engine.max_model_len=99999", "engine.max_model_len"),
    ("sweep.block_sizes=[0]", "sweep.block_sizes"),
    ("sweep.capacities=[64,0]", "sweep.capacities"),
    ("sweep.policies=[lru,mru_magic]", "sweep.policies"),
    ("sweep.capacities=abc", "sweep.capacities"),
    ("sweep.colour=red", "sweep.colour"),
    ("workloads.qa.num_contexts=0", "workloads.qa.num_contexts"),
    ("workloads.qa.arrival_rate=-1", "workloads.qa.arrival_rate"),
    ("mix.pattern=zigzag", "mix.pattern"),
    ("mix.cache_friendly=[nope]", "mix.cache_friendly"),
])
def test_bad_values_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        compose_config([override])
    assert key in str(err.value)


def test_bad_engine_config_fails_before_the_engine_starts(monkeypatch):
    import prefix_study.engine.runtime as runtime

    def must_not_start(*a, **k):
        raise AssertionError("engine started on a bad config")

    monkeypatch.setattr(runtime, "build_engine", must_not_start)
    with pytest.raises(ConfigError, match="engine.block_sizes"):
        compose_config(["engine.block_sizes=[16,32]"])


def test_stage_hashes_depend_only_on_their_config():
    base = compose_config()
    cap = compose_config(["sweep.capacities=[64,1024]"])
    size = compose_config(["workloads.qa.num_conversations=7"])
    assert stage_hash(base, "engine") == stage_hash(cap, "engine")
    assert stage_hash(base, "replay") != stage_hash(cap, "replay")
    assert stage_hash(base, "workloads") != stage_hash(size, "workloads")
    assert stage_hash(base, "engine") != stage_hash(size, "engine")
    assert stage_hash(base, "assets") == stage_hash(size, "assets")

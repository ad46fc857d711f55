"""Configuration composes, and bad values fail before any work, naming the key."""

from __future__ import annotations

import pytest

from prefix_study.config.compose import compose_config
from prefix_study.config.hashing import STAGES, stage_hash
from prefix_study.config.validate import ConfigError


@pytest.fixture(scope="module")
def default_cfg():
    """The default config, composed once for the tests that only read it
    (composing costs ~0.4 s; the result is read-only)."""
    return compose_config()


def test_default_config_composes(default_cfg):
    cfg = default_cfg
    assert set(cfg.workloads) == {"chat_single", "chat_multi", "qa", "summarization"}
    assert list(cfg.engine.block_sizes) == [32, 64]
    assert list(cfg.sweep.block_sizes) == [16, 32, 64]


@pytest.mark.parametrize("override, key", [
    ("engine.block_sizes=[16]", "engine.block_sizes"),
    ("engine.block_sizes=[48]", "engine.block_sizes"),
    ("engine.capacity_blocks=0", "engine.capacity_blocks"),
    ("engine.capacity_blocks=-5", "engine.capacity_blocks"),
    ("engine.capacities=[513,64]", "engine.capacities"),  # 64 blocks cannot hold 4096 tokens
    ("engine.simulator=parrot", "engine.simulator"),
    ("engine.clock=sundial", "engine.clock"),
    ("engine.fan_out=node", "engine.fan_out"),
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
    ("workloads.qa.max_turns=2", "max_turns"),  # not a qa knob (QaConfig)
    ("workloads.chat_multi.min_document_tokens=9", "min_document_tokens"),
    ("engine.model.shape=gpt3", "engine.model.shape"),
    ("workloads.qa.think_time.distribution=weibull", "workloads.qa.think_time.distribution"),
    ("engine.mode=remote", "engine.mode"),
    ("engine.server_time_scale=-1", "engine.server_time_scale"),
])
def test_bad_values_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        compose_config([override])
    assert key in str(err.value)


def test_server_mode_refuses_what_a_server_cannot_do():
    with pytest.raises(ConfigError, match="engine.eviction"):
        compose_config(["engine.mode=server", "engine.eviction=fifo"])
    with pytest.raises(ConfigError, match="engine.clock"):
        compose_config(["engine.mode=server", "engine.clock=cost_model"])
    assert compose_config(["engine.mode=server"]).engine.mode == "server"


def test_bad_engine_config_fails_before_the_engine_starts(monkeypatch):
    import prefix_study.engine.runtime as runtime

    def must_not_start(*a, **k):
        raise AssertionError("engine started on a bad config")

    monkeypatch.setattr(runtime, "build_engine", must_not_start)
    with pytest.raises(ConfigError, match="engine.block_sizes"):
        compose_config(["engine.block_sizes=[16,32]"])


def test_stage_hashes_depend_only_on_their_config(default_cfg):
    base = default_cfg
    cap = compose_config(["sweep.capacities=[64,1024]"])
    size = compose_config(["workloads.qa.num_conversations=7"])
    assert stage_hash(base, "engine") == stage_hash(cap, "engine")
    assert stage_hash(base, "replay") != stage_hash(cap, "replay")
    assert stage_hash(base, "workloads") != stage_hash(size, "workloads")
    assert stage_hash(base, "engine") != stage_hash(size, "engine")
    assert stage_hash(base, "assets") == stage_hash(size, "assets")


def test_engine_fan_out_is_scheduling_only():
    """One job per workload writes the same files: no stage hash changes."""
    from prefix_study.config.hashing import STAGES

    base = compose_config(["engine.capacities=[65]", "engine.max_model_len=2048"])
    fanned = compose_config(["engine.capacities=[65]", "engine.max_model_len=2048", "engine.fan_out=workload"])
    assert fanned.engine.fan_out == "workload" and base.engine.fan_out == "block_size"
    assert all(stage_hash(base, s) == stage_hash(fanned, s) for s in STAGES)


def test_each_workload_kind_has_its_own_typed_config(default_cfg):
    from omegaconf import OmegaConf

    from prefix_study.config.schema import ChatMultiConfig, QaConfig, Semantics, SimulatorMode

    cfg = default_cfg
    assert OmegaConf.get_type(cfg.workloads.qa) is QaConfig
    assert OmegaConf.get_type(cfg.workloads.chat_multi) is ChatMultiConfig
    assert "max_turns" in cfg.workloads.chat_multi and "max_turns" not in cfg.workloads.qa
    assert cfg.engine.simulator is SimulatorMode.script
    assert list(cfg.sweep.semantics) == [Semantics.block, Semantics.prefix]


def test_defaults_live_in_the_schema_only():
    """conf/ YAML files carry only what differs from the schema's defaults."""
    from pathlib import Path

    import yaml
    from omegaconf import OmegaConf

    from prefix_study.config.inputs import CONF_DIR
    from prefix_study.config.schema import EngineConfig, MixConfig, SweepConfig

    schemas = {"engine": EngineConfig, "sweep": SweepConfig, "mix": MixConfig}
    for group, schema in schemas.items():
        default = OmegaConf.to_container(OmegaConf.structured(schema), enum_to_str=True)
        for path in sorted((Path(CONF_DIR) / group).glob("*.yaml")):
            data = yaml.safe_load(path.read_text()) or {}
            data.pop("defaults", None)

            def check(d, ref, where):
                for k, v in d.items():
                    if isinstance(v, dict):
                        check(v, ref[k], f"{where}.{k}")
                    else:
                        assert v != ref[k], f"{path.name}: {where}.{k}={v!r} repeats the schema default"

            check(data, default, group)
    for path in sorted((Path(CONF_DIR) / "workload").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        assert set(data) == {"defaults"}, f"{path.name} sets {set(data) - {'defaults'}}: put defaults in the schema"


def test_load_config_types_workloads_from_a_written_config(tmp_path, default_cfg):
    """A run's config.yaml (plain YAML) is typed per kind again when loaded."""
    from omegaconf import OmegaConf

    from prefix_study.config.resolved import load_config
    from prefix_study.config.schema import SummarizationConfig

    path = tmp_path / "config.yaml"
    path.write_text(OmegaConf.to_yaml(default_cfg, resolve=True))
    cfg = load_config(path)
    assert OmegaConf.get_type(cfg.workloads.summarization) is SummarizationConfig
    path.write_text(path.read_text().replace("min_document_tokens: 512", "min_document_tokens: 512\n    max_turns: 3"))
    with pytest.raises(ConfigError, match="workloads.summarization"):
        load_config(path)


def test_a_runs_composed_file_is_the_config_composing_gives(tmp_path):
    """What every Snakemake process of a run reads (`--config composed=`, written by
    the command) is the config composing the overrides gives: the same YAML, the
    same stage directories; a file of other overrides, or none, is composed anew."""
    from omegaconf import OmegaConf

    from prefix_study.config.resolved import write_config
    from prefix_study.pipeline import PipelinePaths, run_config

    trace = tmp_path / "mc.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 1024, "output_length": 8, "hash_ids": [1, 2]}\n')
    for overrides in ([], ["sweep=tiny", "engine.capacities=[129]", "results_dir=/tmp/a b/r"],
                      ["tiers=lmcache", "sweep.policies=[lru,arc]"],
                      ["+workload@workloads.mc=mooncake", f"workloads.mc.trace_path={trace}"]):
        composed = compose_config(overrides)
        path = write_config(composed, tmp_path / "configs")
        assert write_config(composed, tmp_path / "configs") == path  # one file per distinct config
        read = run_config({"overrides": overrides, "composed": str(path)})
        assert OmegaConf.to_yaml(read) == OmegaConf.to_yaml(composed)
        assert OmegaConf.is_readonly(read)
        paths, read_paths = PipelinePaths(composed), PipelinePaths(read)
        assert [paths.stage(s) for s in STAGES] == [read_paths.stage(s) for s in STAGES]
        assert paths.run == read_paths.run
    other = run_config({"overrides": ["seed=3"], "composed": str(path)})
    assert other.seed == 3 and OmegaConf.to_yaml(other) == OmegaConf.to_yaml(compose_config(["seed=3"]))
    assert run_config({"overrides": ["seed=3"], "composed": str(tmp_path / "gone.yaml")}).seed == 3


def test_semantics_have_one_home():
    from prefix_study.config.schema import SEMANTICS, Semantics
    from prefix_study.replay import simulate

    assert simulate.SEMANTICS is SEMANTICS and SEMANTICS == tuple(s.value for s in Semantics)


def test_a_composition_is_reused_until_a_conf_file_changes(tmp_path):
    """compose_config shares Hydra's composition between equal requests; an
    edited conf/ file is composed again, and each result has its own overrides."""
    import shutil

    from prefix_study.config.inputs import CONF_DIR

    conf = shutil.copytree(CONF_DIR, tmp_path / "conf")
    first = compose_config(["sweep=tiny"], conf_dir=conf)
    with_caps = compose_config(["sweep=tiny", "sweep.capacities=[64]"], conf_dir=conf)
    assert list(first.sweep.capacities) == [64, 256] and list(with_caps.sweep.capacities) == [64]
    assert list(first.overrides) == ["sweep=tiny"]
    assert compose_config(["sweep=tiny"], conf_dir=conf) == first
    tiny = conf / "sweep" / "tiny.yaml"
    tiny.write_text(tiny.read_text().replace("capacities: [64, 256]", "capacities: [96]"))
    assert list(compose_config(["sweep=tiny"], conf_dir=conf).sweep.capacities) == [96]

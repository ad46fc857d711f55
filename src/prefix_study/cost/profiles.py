"""Model and hardware profiles: the architecture and datasheet facts that turn
blocks into bytes and token counts into seconds.

The engine keeps running a tiny random-weight model on the CPU; a *named*
profile (`conf/model/<name>.yaml`, `conf/hardware/<name>.yaml`) only converts
units and time. Every number in those files carries its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

GIB = 2**30


@dataclass(frozen=True)
class ModelProfile:
    """Architecture of a published model (from its config.json).

    KV bytes per token:
    - MHA/GQA: 2 (K and V) x num_layers x num_kv_heads x head_dim x kv_dtype_bytes
    - MLA (DeepSeek-V2/V3, `mla_kv_lora_rank` set): the cache holds one latent
      vector plus the decoupled RoPE key per layer and token:
      num_layers x (kv_lora_rank + qk_rope_head_dim) x kv_dtype_bytes
    """

    name: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    #: Per-head dimension of the attention scores (q.k); for MLA the
    #: qk_nope_head_dim + qk_rope_head_dim.
    head_dim: int
    #: Parameters one token passes through (active parameters for MoE).
    num_params: int
    kv_dtype_bytes: int = 2
    mla_kv_lora_rank: Optional[int] = None
    mla_qk_rope_head_dim: Optional[int] = None
    #: Dense FFN width and vocabulary, to cross-check num_params (dense models).
    intermediate_size: Optional[int] = None
    vocab_size: Optional[int] = None
    tie_word_embeddings: bool = False
    source: str = ""

    @property
    def is_mla(self) -> bool:
        return self.mla_kv_lora_rank is not None

    def kv_bytes_per_token(self) -> int:
        if self.is_mla:
            return self.num_layers * (int(self.mla_kv_lora_rank) + int(self.mla_qk_rope_head_dim or 0)) \
                * self.kv_dtype_bytes
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * self.kv_dtype_bytes

    def kv_bytes_per_block(self, block_size: int) -> int:
        return self.kv_bytes_per_token() * int(block_size)

    def dense_param_count(self) -> int:
        """Parameters of a dense Llama-style decoder from its shape (no biases,
        no norms): embeddings (+ untied LM head) + per layer q/k/v/o and a
        gated MLP. Used to check `num_params`; MoE/MLA models are not covered."""
        if self.intermediate_size is None or self.vocab_size is None or self.is_mla:
            raise ValueError(f"{self.name}: dense_param_count needs a dense model with "
                             "intermediate_size and vocab_size")
        q = self.hidden_size * self.num_attention_heads * self.head_dim
        kv = 2 * self.hidden_size * self.num_kv_heads * self.head_dim
        o = self.num_attention_heads * self.head_dim * self.hidden_size
        mlp = 3 * self.hidden_size * self.intermediate_size
        embed = self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)
        return embed + self.num_layers * (q + kv + o + mlp)

    @classmethod
    def from_config(cls, node: Any) -> "ModelProfile":
        """From the composed `model` config node (or any mapping with these keys)."""
        get = (lambda k, d=None: node.get(k, d)) if hasattr(node, "get") else \
            (lambda k, d=None: getattr(node, k, d))
        return cls(
            name=str(get("name")), num_layers=int(get("num_layers")),
            hidden_size=int(get("hidden_size")), num_attention_heads=int(get("num_attention_heads")),
            num_kv_heads=int(get("num_kv_heads")), head_dim=int(get("head_dim")),
            num_params=int(get("num_params")), kv_dtype_bytes=int(get("kv_dtype_bytes", 2)),
            mla_kv_lora_rank=None if get("mla_kv_lora_rank") is None else int(get("mla_kv_lora_rank")),
            mla_qk_rope_head_dim=None if get("mla_qk_rope_head_dim") is None
            else int(get("mla_qk_rope_head_dim")),
            intermediate_size=None if get("intermediate_size") is None else int(get("intermediate_size")),
            vocab_size=None if get("vocab_size") is None else int(get("vocab_size")),
            tie_word_embeddings=bool(get("tie_word_embeddings", False)),
            source=str(get("source", "")),
        )


@dataclass(frozen=True)
class HardwareProfile:
    """One GPU, from its datasheet (dense, i.e. without structured sparsity)."""

    name: str
    peak_bf16_flops: float
    mem_bandwidth_bytes_s: float
    memory_bytes: float
    #: Host <-> GPU link, one direction (PCIe or NVLink-C2C).
    host_link_bytes_s: float
    #: Dense FP8 tensor throughput; None where the GPU has no FP8 (A100).
    peak_fp8_flops: Optional[float] = None
    #: Links of the KV tiers below GPU memory (None where the profile gives none).
    nvme_read_bytes_s: Optional[float] = None
    nvme_write_bytes_s: Optional[float] = None
    network_bytes_s: Optional[float] = None
    source: str = ""

    def peak_flops(self, precision: str) -> float:
        if precision == "bf16":
            return self.peak_bf16_flops
        if precision == "fp8":
            if self.peak_fp8_flops is None:
                raise ValueError(f"hardware {self.name} has no FP8 tensor cores (cost.precision=fp8)")
            return self.peak_fp8_flops
        raise ValueError(f"precision {precision!r}: allowed bf16, fp8")

    @classmethod
    def from_config(cls, node: Any) -> "HardwareProfile":
        get = (lambda k, d=None: node.get(k, d)) if hasattr(node, "get") else \
            (lambda k, d=None: getattr(node, k, d))
        fp8 = get("peak_fp8_flops")

        def optional(key: str) -> Optional[float]:
            return None if get(key) is None else float(get(key))

        return cls(
            name=str(get("name")), peak_bf16_flops=float(get("peak_bf16_flops")),
            mem_bandwidth_bytes_s=float(get("mem_bandwidth_bytes_s")),
            memory_bytes=float(get("memory_bytes")), host_link_bytes_s=float(get("host_link_bytes_s")),
            peak_fp8_flops=None if fp8 is None else float(fp8), nvme_read_bytes_s=optional("nvme_read_bytes_s"),
            nvme_write_bytes_s=optional("nvme_write_bytes_s"), network_bytes_s=optional("network_bytes_s"),
            source=str(get("source", "")),
        )

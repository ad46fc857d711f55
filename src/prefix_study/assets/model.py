"""A GPT-2-architecture model with random weights, saved locally from a seed.

Weights do not change prefix-cache behaviour (the token simulator decides the
output tokens); the architecture and the real tokenizer make vLLM run its real
forward passes and its real KV cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from prefix_study.assets.tokenizer import EOS_TOKEN_ID, VOCAB_SIZE, save_hf_tokenizer


@dataclass(frozen=True)
class ModelShape:
    n_layer: int
    n_embd: int
    n_head: int


MODEL_SHAPES: dict[str, ModelShape] = {
    "tiny": ModelShape(n_layer=2, n_embd=128, n_head=4),
    "gpt2": ModelShape(n_layer=12, n_embd=768, n_head=12),  # GPT-2 124M
}


def build_model_dir(out_dir: Path | str, shape: str = "tiny", seed: int = 0,
                    n_positions: int = 4096) -> Path:
    """Write config, random weights (safetensors) and the tokenizer to `out_dir`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if shape not in MODEL_SHAPES:
        raise ValueError(f"engine.model.shape={shape!r}: allowed {sorted(MODEL_SHAPES)}")
    s = MODEL_SHAPES[shape]
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=VOCAB_SIZE, n_positions=n_positions, n_embd=s.n_embd,
        n_layer=s.n_layer, n_head=s.n_head, bos_token_id=EOS_TOKEN_ID,
        eos_token_id=EOS_TOKEN_ID,
    )
    model = GPT2LMHeadModel(config).eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    save_hf_tokenizer(out)
    (out / "prefix_study_model.json").write_text(json.dumps(
        {"shape": shape, "seed": seed, "n_positions": n_positions,
         "parameters": sum(p.numel() for p in model.parameters())}, indent=2))
    return out

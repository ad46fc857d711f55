"""The figures and tables a run presents, and their captions.

The captions live in one place, `workflow/report/<caption>.rst`: Snakemake's
HTML report shows them next to each result (the rules' `report(...,
caption=...)`), and the run index (`index.md`) reads the same files.
"""

from __future__ import annotations

from pathlib import Path

#: workflow/report/ of the checkout (the Snakefile's report captions).
CAPTIONS_DIR = Path(__file__).resolve().parents[3] / "workflow" / "report"

#: Figure name (figures/<name>.png/.svg, all drawn by the figures stage) ->
#: caption file stem.
FIGURES = {
    "reuse_cdfs": "reuse_cdfs",
    "hit_rate_vs_capacity": "hit_rate_vs_capacity",
    "hit_rate_curves": "hit_rate_curves",
    "mixed_comparison": "mixed_comparison",
    "engine_vs_replay": "engine_vs_replay",
    "engine_capacity": "engine_capacity",
    "hit_rate_vs_memory": "hit_rate_vs_memory",
    "cost_savings": "cost_savings",
    "cluster_scaling": "cluster_scaling",
}
#: Figures drawn only under engine.clock=cost_model (the engine TTFT comparison).
ENGINE_TTFT_FIGURES = {"ttft_prefix_caching": "ttft_prefix_caching"}

#: Figures and tables of the tiers stage (it runs only with a tier below GPU memory).
TIER_FIGURES = {"tier_tokens": "tier_tokens", "tier_ttft": "tier_ttft"}
TIER_TABLES = {("tiers", "tiers.md"): "tiers", ("tiers", "break_even.md"): "break_even",
               ("cluster", "cluster_tiers.md"): "cluster_tiers"}

#: (stage, Markdown table file) -> caption file stem.
TABLES = {
    ("stats", "reuse_summary.md"): "reuse_summary",
    ("replay", "hit_rates.md"): "hit_rates",
    ("mixed", "hit_rates.md"): "mixed",
    ("replay", "engine_vs_replay.md"): "engine_vs_replay_table",
    ("replay", "engine_sweep.md"): "engine_sweep",
    ("savings", "equal_memory.md"): "equal_memory",
    ("savings", "savings.md"): "savings",
    ("cluster", "cluster.md"): "cluster",
}


def caption_path(stem: str) -> Path:
    return CAPTIONS_DIR / f"{stem}.rst"


def caption(stem: str) -> str:
    """A caption as one line of text."""
    return " ".join(caption_path(stem).read_text().split())

"""One look for every figure: Agg backend, colours per policy/workload,
atomic PNG + SVG output with reproducible bytes where matplotlib allows."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from prefix_study.io import atomic_path  # noqa: E402

POLICY_COLORS = {
    "lru": "#1f77b4",
    "lru_plain": "#17becf",
    "fifo": "#ff7f0e",
    "s3fifo": "#2ca02c",
    "sieve": "#9467bd",
    "belady": "#7f7f7f",
    "wa_lru": "#d62728",
    "arc": "#8c564b",
    "lfu": "#e377c2",
    "lfu_plain": "#f7b6d2",
    "twoq": "#bcbd22",
    "cost_lru": "#393b79",
    "wa_prob": "#ff9896",
}
SEMANTICS_STYLE = {"block": "-", "prefix": "--"}
_FALLBACK = plt.get_cmap("tab10").colors

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "prefix-study",
    "svg.fonttype": "none",
}


def apply_style() -> None:
    plt.rcParams.update(RC)


def policy_color(name: str) -> str:
    return POLICY_COLORS.get(name, _FALLBACK[hash_index(name)])


def hash_index(name: str) -> int:
    """A stable (not PYTHONHASHSEED-dependent) palette index for a name."""
    return sum(name.encode()) % len(_FALLBACK)


def series_colors(names: Iterable[str]) -> dict[str, tuple]:
    """Colours for workloads, in the order given."""
    return {n: _FALLBACK[i % len(_FALLBACK)] for i, n in enumerate(names)}


def new_figure(nrows: int, ncols: int, panel_w: float = 3.4, panel_h: float = 2.6, **kw):
    apply_style()
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_w * ncols, panel_h * nrows + 0.6),
                             squeeze=False, **kw)
    return fig, axes


def save_figure(fig, out_stem: Path | str) -> list[Path]:
    """Write `<out_stem>.png` and `<out_stem>.svg` atomically; close the figure."""
    out_stem = Path(out_stem)
    paths = []
    for ext, meta in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        path = out_stem.with_suffix(f".{ext}") if out_stem.suffix in (".png", ".svg") else Path(f"{out_stem}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, metadata=meta, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths

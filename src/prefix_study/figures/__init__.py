"""Figures (matplotlib, Agg): PNG + SVG, one shared style (style.py)."""

from prefix_study.figures.curves import plot_hit_rate_curves
from prefix_study.figures.engine import plot_engine_vs_replay
from prefix_study.figures.hit_rates import plot_hit_rate_vs_capacity
from prefix_study.figures.mixed import plot_mixed_comparison
from prefix_study.figures.reuse import plot_reuse_cdfs

__all__ = [
    "plot_engine_vs_replay",
    "plot_hit_rate_curves",
    "plot_hit_rate_vs_capacity",
    "plot_mixed_comparison",
    "plot_reuse_cdfs",
]

"""Mixed workload: baselines vs workload-aware LRU, grouped bars per workload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from prefix_study.figures.style import new_figure, policy_color, save_figure


def plot_mixed_comparison(mixed: pl.DataFrame, out_stem: Path | str) -> list[Path]:
    """mixed: `mixed/hit_rates.parquet`. One panel per semantics x capacity;
    groups = workloads (then `all`), bars = policies; cache-friendly
    workloads (admitted by WA-LRU) are marked with *."""
    semantics = [s for s in ("block", "prefix") if s in set(mixed["semantics"].to_list())]
    caps = sorted(mixed["capacity_blocks"].unique().to_list())
    policies = list(dict.fromkeys(mixed["policy"].to_list()))
    workloads = sorted(w for w in mixed["workload"].unique().to_list() if w != "all") + ["all"]
    fig, axes = new_figure(len(semantics), len(caps), panel_w=max(3.2, 0.9 * len(workloads) + 1.2),
                           panel_h=2.8)
    width = 0.8 / max(len(policies), 1)
    top = min(1.0, max(0.1, float(mixed["hit_rate"].max() or 0.0) * 1.15))
    x = np.arange(len(workloads))
    for r, s in enumerate(semantics):
        for c, cap in enumerate(caps):
            ax = axes[r][c]
            d = mixed.filter((pl.col("semantics") == s) & (pl.col("capacity_blocks") == cap))
            friendly = set()
            for i, p in enumerate(policies):
                e = d.filter(pl.col("policy") == p)
                rate = dict(zip(e["workload"].to_list(), e["hit_rate"].to_list()))
                friendly |= {w for w, f in zip(e["workload"].to_list(), e["cache_friendly"].to_list()) if f}
                ax.bar(x + (i - (len(policies) - 1) / 2) * width, [rate.get(w, 0.0) for w in workloads],
                       width, color=policy_color(p), label=p)
            ax.set_xticks(x, [w + ("*" if w in friendly else "") for w in workloads], rotation=20, ha="right")
            ax.set_ylim(0, top)
            ax.set_ylabel("hit rate (block accesses)")
            ax.set_title(f"{s} semantics · {cap} blocks")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, -0.01))
    fig.suptitle("Mixed workload: baselines vs workload-aware LRU (* = cache-friendly)")
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    return save_figure(fig, out_stem)

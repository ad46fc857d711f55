"""Continuous hit-rate curves: one panel per workload x semantics, one line
per policy against capacity in tokens, with the Belady bound and the
infinite-cache line."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from matplotlib.lines import Line2D

from prefix_study.figures.style import new_figure, policy_color, save_figure

BOUND = "belady"


def curve_block_size(curves: pl.DataFrame, preferred: int = 32) -> int:
    """The block size drawn: `preferred` if present, else the middle one."""
    sizes = sorted(curves["block_size"].unique().to_list())
    return preferred if preferred in sizes else sizes[len(sizes) // 2]


def plot_hit_rate_curves(curves: pl.DataFrame, out_stem: Path | str,
                         reuse_summary: pl.DataFrame | None = None, block_size: int | None = None) -> list[Path]:
    """curves: `replay/curves.parquet`; reuse_summary (optional):
    `stats/reuse_summary.parquet` for the infinite-cache line."""
    bs = curve_block_size(curves) if block_size is None else block_size
    d = curves.filter(pl.col("block_size") == bs)
    workloads = sorted(d["workload"].unique().to_list())
    semantics = [s for s in ("prefix", "block") if s in set(d["semantics"].to_list())]
    policies = [p for p in dict.fromkeys(d.sort("policy")["policy"].to_list()) if p != BOUND]
    fig, axes = new_figure(len(workloads), len(semantics), panel_w=4.2, panel_h=2.8)
    for r, w in enumerate(workloads):
        for c, sem in enumerate(semantics):
            ax = axes[r][c]
            e = d.filter((pl.col("workload") == w) & (pl.col("semantics") == sem))
            for p in policies:
                q = e.filter(pl.col("policy") == p).sort("capacity_tokens")
                if q.height:
                    one_pass = q["method"][0] == "one_pass"
                    ax.plot(q["capacity_tokens"].to_numpy(), q["hit_rate"].to_numpy(), color=policy_color(p),
                            linewidth=1.4 if one_pass else 1.0, marker=None if one_pass else ".", markersize=3)
            b = e.filter(pl.col("policy") == BOUND).sort("capacity_tokens")
            if b.height:
                ax.plot(b["capacity_tokens"].to_numpy(), b["hit_rate"].to_numpy(), color="black",
                        linestyle="--", linewidth=1)
            if reuse_summary is not None:
                s = reuse_summary.filter((pl.col("workload") == w) & (pl.col("block_size") == bs))
                if s.height and s["infinite_hit_rate"][0] is not None:
                    ax.axhline(s["infinite_hit_rate"][0], color="black", linestyle=":", linewidth=1)
            ax.set_xscale("log")
            ax.set_ylim(0, 1)
            ax.set_xlabel("cache capacity (tokens)")
            ax.set_ylabel("hit rate (block accesses)")
            ax.set_title(f"{w} · {sem} semantics")
    handles = [Line2D([], [], color=policy_color(p), label=p) for p in policies]
    handles.append(Line2D([], [], color="black", linestyle="--", label="Belady"))
    if reuse_summary is not None:
        handles.append(Line2D([], [], color="black", linestyle=":", label="infinite cache"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 7), frameon=False,
               bbox_to_anchor=(0.5, -0.01))
    fig.suptitle(f"Hit-rate curves ({bs}-token blocks; LRU in one pass, others on a capacity grid)")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return save_figure(fig, out_stem)

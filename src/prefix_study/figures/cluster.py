"""Cluster scaling: hit rate and TTFT p90 against replica count, per router."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from prefix_study.figures.style import new_figure, save_figure, series_colors


def plot_cluster_scaling(table: pl.DataFrame, out_stem: Path | str) -> list[Path]:
    """table: `cluster/cluster.parquet`. Columns of panels = workloads; top
    row cluster hit rate, bottom row TTFT p90 (log scale where routers differ
    by more than 20x); one line per router, dashed for approximate variants."""
    t = table.with_columns(
        pl.when(pl.col("variant") == "").then(pl.col("router"))
        .otherwise(pl.col("router") + "/" + pl.col("variant")).alias("label"))
    workloads = sorted(t["workload"].unique().to_list())
    labels = sorted(t["label"].unique().to_list())
    colors = series_colors(sorted(t["router"].unique().to_list()))
    fig, axes = new_figure(2, len(workloads), panel_w=3.0, panel_h=2.5)
    for c, w in enumerate(workloads):
        d = t.filter(pl.col("workload") == w)
        for label in labels:
            e = d.filter(pl.col("label") == label).sort("replicas")
            style = "--" if label.endswith("/approximate") else "-"
            color = colors[label.split("/")[0]]
            for row, col in ((0, "hit_rate"), (1, "ttft_p90_s")):
                axes[row][c].plot(e["replicas"].to_list(), e[col].to_list(), style, marker="o", ms=3,
                                  color=color, label=label)
        axes[0][c].set_title(w)
        axes[0][c].set_ylim(0, 1)
        ttft = [v for v in d["ttft_p90_s"].to_list() if v > 0]
        if ttft and max(ttft) / min(ttft) > 20:  # log only when routers differ by orders of magnitude
            axes[1][c].set_yscale("log")
        else:
            axes[1][c].set_ylim(0, max(ttft or [1.0]) * 1.1)
        for row in (0, 1):
            axes[row][c].set_xscale("log", base=2)
            axes[row][c].set_xlabel("replicas")
        axes[0][c].set_ylabel("cluster hit rate")
        axes[1][c].set_ylabel("TTFT p90 (s)")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 5), frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("Replicas behind a router: cluster hit rate and TTFT p90")
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    return save_figure(fig, out_stem)

"""CDFs of reuse fraction, hits per block and reuse gaps, per workload."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from prefix_study.figures.style import new_figure, save_figure, series_colors

PANELS = (
    ("reuse_fraction", "reuse fraction per request", "fraction of requests", "linear"),
    ("hits_per_block", "hits per block", "fraction of blocks", "symlog"),
    ("gap_s", "reuse gap (s)", "fraction of reuses", "symlog"),
    ("gap_requests", "reuse gap (requests between)", "fraction of reuses", "symlog"),
)


def plot_reuse_cdfs(cdfs: pl.DataFrame, out_stem: Path | str) -> list[Path]:
    """One row per block size, one panel per metric, one line per workload.

    cdfs: the `stats/reuse_cdfs.parquet` frame (workload, block_size, metric,
    quantile, value). The engine-measured reuse fraction, where present, is
    drawn dashed beside the infinite-cache one.
    """
    sizes = sorted(cdfs["block_size"].unique().to_list())
    workloads = sorted(cdfs["workload"].unique().to_list())
    colors = series_colors(workloads)
    fig, axes = new_figure(len(sizes), len(PANELS))
    for r, bs in enumerate(sizes):
        for c, (metric, xlabel, ylabel, scale) in enumerate(PANELS):
            ax = axes[r][c]
            for w in workloads:
                for m, style, suffix in ((metric, "-", ""), ("engine_" + metric, "--", " (engine)")):
                    d = cdfs.filter((pl.col("workload") == w) & (pl.col("block_size") == bs)
                                    & (pl.col("metric") == m)).drop_nulls("value").drop_nans("value")
                    if d.height == 0:
                        continue
                    ax.step(d["value"].to_numpy(), d["quantile"].to_numpy(), where="post",
                            color=colors[w], linestyle=style, label=w + suffix)
            if scale == "symlog":
                ax.set_xscale("symlog", linthresh=1.0)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.set_title(f"{xlabel.split(' (')[0]} · {bs}-token blocks")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False,
                   bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("Reuse CDFs per workload (infinite cache; dashed: engine-measured)")
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return save_figure(fig, out_stem)

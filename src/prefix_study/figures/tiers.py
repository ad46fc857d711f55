"""KV tiers: tokens served per tier against the swept tier's capacity
(stacked), and TTFT against its read bandwidth, from the tiers stage's table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from prefix_study.figures.style import new_figure, save_figure, series_colors


def _workloads(table: pl.DataFrame) -> list[str]:
    return list(dict.fromkeys(table["workload"].to_list()))


def plot_tier_tokens(table: pl.DataFrame, out_stem: Path | str) -> list[Path]:
    """table: `tiers/tiers.parquet`, rows with point == capacity. One panel per
    workload: GPU memory, each lower tier and recomputed tokens, stacked,
    against the swept tier's capacity (GiB; evenly spaced, labelled)."""
    t = table.filter(pl.col("point") == "capacity")
    workloads = _workloads(t)
    fig, axes = new_figure(1, max(len(workloads), 1), panel_w=3.2, panel_h=2.8)
    for c, w in enumerate(workloads):
        d = t.filter(pl.col("workload") == w).sort("swept_capacity")
        ax = axes[0][c]
        x = np.arange(d.height)
        names = ["gpu"] + [n for n in (d["tier1"][0], d["tier2"][0]) if n is not None] + ["recomputed"]
        values = [d["gpu_tokens"].to_numpy()]
        values += [d[f"tier{i}_tokens"].to_numpy() for i, n in ((1, d["tier1"][0]), (2, d["tier2"][0])) if n]
        values.append(d["recomputed_tokens"].to_numpy())
        colors = series_colors(names)
        bottom = np.zeros(d.height)
        for name, v in zip(names, values):
            ax.bar(x, v, bottom=bottom, color=colors[name] if name != "recomputed" else "0.8", label=name)
            bottom = bottom + v
        ax.set_xticks(x, [f"{g:g}" for g in d["swept_capacity_gib"].to_list()])
        ax.set_xlabel(f"{d['swept_tier'][0]} capacity (GiB)")
        ax.set_ylabel("looked-up tokens")
        ax.set_title(w)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, -0.04))
    fig.suptitle("Tokens served per tier against the lower tier's capacity")
    fig.tight_layout(rect=(0, 0.08, 1, 0.94))
    return save_figure(fig, out_stem)


def plot_tier_ttft(table: pl.DataFrame, out_stem: Path | str) -> list[Path]:
    """table: `tiers/tiers.parquet`, rows with point == read_bytes_s. One
    panel per workload: TTFT p50/p90 with the tiers against the swept tier's
    read bandwidth (log), GPU memory alone and no cache as horizontal lines,
    the break-even bandwidth of the median loaded prefix as a vertical line."""
    t = table.filter(pl.col("point") == "read_bytes_s")
    workloads = _workloads(t)
    fig, axes = new_figure(1, max(len(workloads), 1), panel_w=3.2, panel_h=2.8)
    for c, w in enumerate(workloads):
        d = t.filter(pl.col("workload") == w).sort("swept_read_bytes_s")
        ax = axes[0][c]
        bw = (d["swept_read_bytes_s"] / 1e9).to_list()
        for q, style in (("p50", "-"), ("p90", "--")):
            line, = ax.plot(bw, d[f"ttft_{q}_s"].to_list(), style, marker="o", ms=3, label=f"tiers {q}")
            ax.axhline(d[f"ttft_gpu_only_{q}_s"][0], color="0.4", ls=style, lw=0.9, label=f"GPU memory only {q}")
            ax.axhline(d[f"ttft_no_cache_{q}_s"][0], color="tab:red", ls=style, lw=0.9, label=f"no cache {q}")
        be = [v for v in d["break_even_bytes_s"].to_list() if v is not None and np.isfinite(v)]
        if be:
            ax.axvline(float(np.median(be)) / 1e9, color="k", ls=":", lw=1.0, label="break-even (median prefix)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(f"{d['swept_tier'][0]} read bandwidth (GB/s)")
        ax.set_ylabel("TTFT (s)")
        ax.set_title(w)
    legend: dict[str, object] = {}  # every panel's lines (the break-even line is not in every panel)
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=4, frameon=False,
               bbox_to_anchor=(0.5, -0.08))
    fig.suptitle("TTFT against the lower tier's read bandwidth (request alone, load time included)")
    fig.tight_layout(rect=(0, 0.12, 1, 0.94))
    return save_figure(fig, out_stem)

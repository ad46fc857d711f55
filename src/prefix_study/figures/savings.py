"""Figures of the cost stage: hit rate against KV memory (block sizes at
equal memory), what hits buy (token hit rate and TTFT saved per GiB), and
engine TTFT with and without prefix caching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.lines import Line2D

from prefix_study.figures.style import new_figure, policy_color, save_figure, series_colors

BLOCK_SIZE_MARKERS = {16: "o", 32: "s", 64: "^"}


def plot_hit_rate_vs_memory(hit_rates: pl.DataFrame, out_stem: Path | str, model_name: str,
                            semantics: str = "prefix") -> list[Path]:
    """One panel per workload: hit rate against capacity in GiB of KV memory,
    one line per policy x block size (colour: policy, marker + style: size)."""
    d = hit_rates.filter(pl.col("semantics") == semantics)
    workloads = sorted(d["workload"].unique().to_list())
    sizes = sorted(d["block_size"].unique().to_list())
    policies = list(dict.fromkeys(d.sort("policy")["policy"].to_list()))
    styles = dict(zip(sizes, ["-", "--", ":", "-."] * 4))
    fig, axes = new_figure(1, len(workloads), panel_w=3.6, panel_h=2.9)
    for c, w in enumerate(workloads):
        ax = axes[0][c]
        for p in policies:
            for bs in sizes:
                e = d.filter((pl.col("workload") == w) & (pl.col("policy") == p)
                             & (pl.col("block_size") == bs)).sort("capacity_gib")
                if e.height:
                    ax.plot(e["capacity_gib"].to_numpy(), e["hit_rate"].to_numpy(), color=policy_color(p),
                            linestyle=styles[bs], marker=BLOCK_SIZE_MARKERS.get(bs, "x"), markersize=3)
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"KV capacity (GiB of {model_name})")
        ax.set_ylabel("hit rate (block accesses)")
        ax.set_title(w)
    handles = [Line2D([], [], color=policy_color(p), label=p) for p in policies]
    handles += [Line2D([], [], color="black", linestyle=styles[b], marker=BLOCK_SIZE_MARKERS.get(b, "x"),
                       markersize=3, label=f"{b}-token blocks") for b in sizes]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"Hit rate vs KV memory: block sizes at equal memory ({semantics} semantics)")
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return save_figure(fig, out_stem)


def plot_cost_savings(savings: pl.DataFrame, out_stem: Path | str, block_size: int, model_name: str,
                      hardware_name: str) -> list[Path]:
    """Columns: workloads (and the mix); rows: token hit rate, and mean TTFT
    saved per request (ms), against capacity in GiB, one line per policy."""
    d = savings.filter((pl.col("block_size") == block_size)
                       & ((pl.col("scope") == "replay") | (pl.col("workload") == "all")))
    d = d.with_columns(pl.when(pl.col("scope") == "mixed").then(pl.lit("mix (all)"))
                       .otherwise(pl.col("workload")).alias("panel"))
    panels = sorted(p for p in d["panel"].unique().to_list() if p != "mix (all)")
    panels += ["mix (all)"] if "mix (all)" in d["panel"].to_list() else []
    policies = list(dict.fromkeys(d.sort("policy")["policy"].to_list()))
    fig, axes = new_figure(2, max(len(panels), 1), panel_w=3.2, panel_h=2.5)
    for c, panel in enumerate(panels):
        for p in policies:
            e = d.filter((pl.col("panel") == panel) & (pl.col("policy") == p)).sort("capacity_gib")
            if not e.height:
                continue
            x = e["capacity_gib"].to_numpy()
            axes[0][c].plot(x, e["token_hit_rate"].to_numpy(), color=policy_color(p), marker="o", markersize=3)
            axes[1][c].plot(x, e["ttft_mean_saved_s"].to_numpy() * 1e3, color=policy_color(p), marker="o",
                            markersize=3)
        for r in (0, 1):
            axes[r][c].set_xscale("log", base=2)
            axes[r][c].set_xlabel(f"KV capacity (GiB of {model_name})")
        axes[0][c].set_ylim(0, 1)
        axes[0][c].set_title(panel)
        axes[0][c].set_ylabel("token hit rate")
        axes[1][c].set_ylabel(f"mean TTFT saved (ms, {hardware_name})")
        axes[1][c].set_ylim(bottom=0)
    handles = [Line2D([], [], color=policy_color(p), marker="o", markersize=3, label=p) for p in policies]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, bbox_to_anchor=(0.5, -0.01))
    fig.suptitle(f"What the cache buys: {block_size}-token blocks, prefix semantics, {model_name} on {hardware_name}")
    fig.tight_layout(rect=(0, 0.04, 1, 0.96))
    return save_figure(fig, out_stem)


def plot_ttft_prefix_caching(table: pl.DataFrame, out_stem: Path | str, model_name: str,
                             hardware_name: str) -> list[Path]:
    """Engine TTFT p50 and p99 per workload, prefix caching on vs off."""
    workloads = sorted(table["workload"].unique().to_list())
    stats = [("ttft_p50_s", "TTFT p50"), ("ttft_p99_s", "TTFT p99")]
    colors = series_colors(["on", "off"])
    fig, axes = new_figure(1, len(stats), panel_w=max(3.2, 1.2 * len(workloads) + 1), panel_h=2.8)
    x = np.arange(len(workloads))
    for c, (col, title) in enumerate(stats):
        ax = axes[0][c]
        for i, on in enumerate((True, False)):
            e = table.filter(pl.col("prefix_caching") == on)
            val = dict(zip(e["workload"].to_list(), e[col].to_list()))
            ax.bar(x + (i - 0.5) * 0.38, [1e3 * (val.get(w) or 0.0) for w in workloads], 0.38,
                   color=colors["on" if on else "off"], label=f"prefix caching {'on' if on else 'off'}")
        ax.set_xticks(x, workloads)
        ax.set_ylabel("ms")
        ax.set_title(title)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"Engine TTFT, vLLM scheduler timed as {model_name} on {hardware_name}")
    fig.tight_layout(rect=(0, 0.07, 1, 0.94))
    return save_figure(fig, out_stem)

"""Build the self-contained HTML report and look at it in headless Chromium.

    python bench/report_screenshot.py [--overrides ...] [--out bench/out/report.png]

Runs `snakemake --report <run_dir>/report.html` for the (already computed)
run of the given config, opens it in headless Chromium (Debian's `chromium`
package: `apt-get install chromium`), and saves a full-page screenshot. It
prints the report's size and how many figures it embeds, so a person can then
look at the PNG.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from prefix_study.config import compose_config  # noqa: E402
from prefix_study.pipeline import PipelinePaths  # noqa: E402


def build_report(overrides: list[str]) -> Path:
    cfg = compose_config(overrides)
    run = PipelinePaths(cfg).run
    report = run / "report.html"
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "--report", str(report)]
    if overrides:
        cmd += ["--config", "overrides=" + repr(list(overrides)).replace("'", '"')]
    subprocess.run(cmd, cwd=ROOT, check=True)
    return ROOT / report


def screenshot(html: Path, out: Path, width: int = 1400, height: int = 2400) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium not found: apt-get install chromium")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
            "--virtual-time-budget=8000", f"--window-size={width},{height}",
            f"--screenshot={out}", html.resolve().as_uri(),
        ], check=True, capture_output=True, timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--out", default=str(ROOT / "bench/out/report.png"))
    args = ap.parse_args()
    html = build_report(args.overrides)
    text = html.read_text(errors="replace") if html.suffix == ".html" else ""
    images = len(re.findall(r"image/png|image/svg", text))
    print(f"report: {html} ({html.stat().st_size / 1e6:.1f} MB, {images} embedded images)")
    screenshot(html, Path(args.out))
    print(f"screenshot: {args.out}")


if __name__ == "__main__":
    main()

"""Build the self-contained HTML report and look at it in headless Chromium.

    python bench/report_screenshot.py [--overrides ...] [--out bench/out/report.png]

Has Snakemake bring `<run_dir>/report.html` up to date (rule `report_html`;
nothing to do when the run is complete) for the given config, opens it in headless Chromium (Debian's `chromium`
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from prefix_study.config.compose import compose_config  # noqa: E402
from prefix_study.pipeline import PipelinePaths, config_arg  # noqa: E402


def build_report(overrides: list[str]) -> Path:
    report = PipelinePaths(compose_config(overrides)).report_html
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", str(report), "--config", config_arg(overrides)]
    subprocess.run(cmd, cwd=ROOT, check=True)
    return ROOT / report


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def _chromium() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium not found: apt-get install chromium")
    return chromium


def screenshot_pages(html: Path, out_dir: Path, clicks: list[list[str]], width: int = 1400,
                     height: int = 1000, port: int = 9333) -> list[Path]:
    """Open the report, click through link texts, screenshot after each path.

    Talks to headless Chromium over the DevTools protocol on the loopback
    interface (the report is a single-page app: its figures are one click in).
    """
    import base64
    import json
    import time
    import urllib.request

    from websockets.sync.client import connect

    out_dir.mkdir(parents=True, exist_ok=True)
    shots = []
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                 f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
                                 f"--window-size={width},{height}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
                    page = next(t for t in targets if t["type"] == "page")
                    break
                except Exception:
                    time.sleep(0.2)
            else:
                raise RuntimeError("chromium did not open its DevTools port")
            with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
                counter = iter(range(1, 10**6))

                def call(method: str, **params):
                    msg_id = next(counter)
                    ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
                    while True:
                        msg = json.loads(ws.recv(timeout=60))
                        if msg.get("id") == msg_id:
                            return msg.get("result", {})

                for n, path in enumerate(clicks):
                    call("Page.navigate", url=html.resolve().as_uri())
                    time.sleep(3)
                    for text in path:
                        # A leaf whose text ends with `text`; a file row opens through
                        # its first icon button (the "eye"), a category by its name.
                        js = ("(() => { const t = %s; const el = [...document.querySelectorAll('*')]"
                              ".filter(e => e.children.length === 0 && e.textContent.trim().endsWith(t))[0];"
                              " if (!el) return false; const row = el.closest('tr,li,div');"
                              " const eye = row && row.parentElement ? row.parentElement.querySelector('svg') : null;"
                              " if (t.endsWith('.png') && eye) { (eye.closest('a,button,span') || eye).dispatchEvent("
                              "new MouseEvent('click', {bubbles: true})); } else { el.click(); } return true; })()"
                              ) % json.dumps(text)
                        found = call("Runtime.evaluate", expression=js, returnByValue=True)
                        if not found.get("result", {}).get("value"):
                            print(f"  (no element with text {text!r})")
                        time.sleep(1.5)
                    data = call("Page.captureScreenshot", format="png")["data"]
                    shot = out_dir / f"report_{n}.png"
                    shot.write_bytes(base64.b64decode(data))
                    shots.append(shot)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return shots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--out-dir", default=str(ROOT / "bench/out"))
    args = ap.parse_args()
    html = build_report(args.overrides)
    text = html.read_text(errors="replace") if html.suffix == ".html" else ""
    images = len(re.findall(r"image/png|image/svg", text))
    print(f"report: {html} ({html.stat().st_size / 1e6:.1f} MB, {images} embedded images)")
    # The landing page, the figure list, the first figure opened, the table list.
    clicks = [[], ["Figures"], ["Figures", ".png"], ["Tables"]]
    for path, shot in zip(clicks, screenshot_pages(html, Path(args.out_dir), clicks)):
        print(f"screenshot after clicking {path or 'nothing'}: {shot}")


if __name__ == "__main__":
    main()

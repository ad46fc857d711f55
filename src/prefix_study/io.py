"""Atomic writers: an interrupted rule leaves nothing that looks complete.

Outputs are written to a temporary name next to them and renamed into place.
Temporary names start with '.' and end in '.tmp', so no output glob
(`*.parquet`, `model`) matches one; a writer first removes the leftovers of
an earlier, killed attempt at the same output (only that output's job
writes them). Results are for everyone to read: files 0644, directories 0755.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # polars and pyarrow load in ~1 s: config.inputs and the Snakefile need none of them
    import polars as pl
    import pyarrow as pa

FILE_MODE = 0o644
DIR_MODE = 0o755
TMP_SUFFIX = ".tmp"


def temp_prefix(path: Path) -> str:
    """Temporary names of `path` are `.<name>.<random>.tmp`."""
    return f".{path.name}."


def clear_leftovers(path: Path | str) -> list[Path]:
    """Remove temporary files or directories an interrupted writer of `path` left."""
    path = Path(path)
    removed = []
    if path.parent.is_dir():
        for p in path.parent.glob(f"{temp_prefix(path)}*"):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def make_readable(root: Path) -> None:
    """chmod a tree to 0755 (directories) / 0644 (files)."""
    os.chmod(root, DIR_MODE if root.is_dir() else FILE_MODE)
    if root.is_dir():
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), DIR_MODE)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), FILE_MODE)


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary file path next to `path`; rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, FILE_MODE)  # mkstemp makes 0600; results are for everyone to read
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """Yield a temporary directory next to `path`; on success make it readable
    by all and put it in place of `path` (replacing an old one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=TMP_SUFFIX, dir=path.parent))
    try:
        yield tmp
        make_readable(tmp)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_parquet(frame: pl.DataFrame | pa.Table, path: Path | str) -> Path:
    """Write Parquet atomically, with stable settings so equal data gives equal bytes."""
    import pyarrow.parquet as pq

    table = frame.to_arrow() if hasattr(frame, "to_arrow") else frame  # polars -> Arrow
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
    return Path(path)


def write_text(text: str, path: Path | str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(obj: Any, path: Path | str) -> Path:
    return write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def markdown_table(frame: pl.DataFrame, float_digits: int = 4) -> str:
    """Render a small frame as a GitHub Markdown table."""
    cols = frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.iter_rows():
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append(f"{v:.{float_digits}f}")
            else:
                cells.append("" if v is None else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

"""Snakemake's locks when several runs share one project directory.

Runs on different results directories may go on at once in one project
(Snakemake's locks name files, and theirs do not overlap; the README's SLURM
section runs two). Snakemake 9 (persistence/file.py, `_delete_locks`) ends
every run by deleting the whole `.snakemake/locks` directory: the other runs'
lock files go with it, and a run that is taking its lock at that moment
fails on its own lock file (`FileNotFoundError: .snakemake/locks/0.input.lock`,
seen in a test run of this project). The Snakefile calls `release_own_locks()`
so that a run ends by removing its own lock files only; `snakemake --unlock`
still removes every lock, as it is asked to.
"""

from __future__ import annotations

import contextlib
import os


def _unlock_own(self) -> None:
    for lockfile in self._lockfile.values():
        with contextlib.suppress(FileNotFoundError):
            os.remove(lockfile)
    self._lockfile.clear()


def release_own_locks() -> None:
    """Make Snakemake's file persistence release only this run's locks (idempotent)."""
    from snakemake.persistence.file import FilePersistence

    FilePersistence.unlock = _unlock_own
    FilePersistence.cleanup_locks = FilePersistence._delete_locks  # `snakemake --unlock`: every lock

"""Registries whose entries are one module each (replay policies, routers,
replica caches, trace formats): a module registers itself when imported, so
loading a registry is importing every public module of its package once."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache


@cache
def import_entries(package: str) -> None:
    """Import every module of `package` whose name does not start with `_`."""
    path = importlib.import_module(package).__path__
    for name in sorted(m.name for m in pkgutil.iter_modules(path)):
        if not name.startswith("_"):
            importlib.import_module(f"{package}.{name}")

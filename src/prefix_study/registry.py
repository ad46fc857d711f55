"""Registries whose entries are one module each: replay policies, routers,
replica caches, trace formats.

An entry module registers itself when imported (`@register_policy("lru", ...)`
and the like). Listing a registry's names must not import its entries (numba
and every kernel, every router): config validation lists them on every
`compose_config`. So the names are read from the entry modules' source, the
string literal each passes to the registry's decorator, and an entry's module
is imported only when that entry is used (`Registry.load`). A test imports
every entry and checks that what registers equals what the sources say.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path


def package_dir(package: str) -> Path:
    """The directory of a package of this project, found without importing it
    (importing `a.b.c` would run `a/b/__init__.py`)."""
    top, *rest = package.split(".")
    if top != __name__.split(".")[0]:
        raise ValueError(f"{package}: registries live in this project's package")
    return Path(__file__).parent.joinpath(*rest)


def _literal_name(call: ast.Call) -> str | None:
    """The entry name a registering call gives: its first argument, or `name=`."""
    arg = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "name"), None)
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


@dataclass(frozen=True)
class Registry:
    """Entries registered in the public modules of `package` (names not
    starting with `_`) by calls to the function `register`."""

    package: str
    register: str
    what: str  # "policy", "router", ... for error messages

    def modules(self) -> dict[str, str]:
        """name -> module of every entry, in file order (sorted file names,
        then source order), from the sources alone."""
        return _entry_modules(self.package, self.register)

    def names(self) -> list[str]:
        return list(self.modules())

    def load(self, name: str) -> None:
        """Import the module that registers `name` (KeyError naming the known ones)."""
        modules = self.modules()
        if name not in modules:
            raise KeyError(f"unknown {self.what} {name!r}; known: {sorted(modules)}")
        importlib.import_module(modules[name])

    def load_all(self) -> None:
        for module in dict.fromkeys(self.modules().values()):
            importlib.import_module(module)


@cache
def _entry_modules(package: str, register: str) -> dict[str, str]:
    directory = package_dir(package)
    out: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules([str(directory)]), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        path = directory / info.name / "__init__.py" if info.ispkg else directory / f"{info.name}.py"
        module = f"{package}.{info.name}"
        found = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == register:
                name = _literal_name(node)
                if name is None:
                    raise ValueError(f"{path}:{node.lineno}: {register}(...) needs the entry name as a string "
                                     "literal (registries list names without importing their modules)")
                found.append((node.lineno, name))
        if not found:
            raise ValueError(f"{path}: a public module of {package} must register an entry with {register}(...) "
                             "(prefix private helpers with `_`)")
        for _, name in sorted(found):
            if name in out:
                raise ValueError(f"{package}: {name!r} registered by both {out[name]} and {module}")
            out[name] = module
    return out


#: The registries. Each package's `__init__` holds the decorator and the
#: registered objects; these say where the entries are.
POLICY_REGISTRY = Registry("prefix_study.replay.kernels", "register_policy", "policy")
ROUTER_REGISTRY = Registry("prefix_study.cluster.routers", "register_router", "router")
CACHE_REGISTRY = Registry("prefix_study.cluster.caches", "register_cache", "cluster cache")
TRACE_FORMAT_REGISTRY = Registry("prefix_study.traces.formats", "register_trace_format", "trace format")

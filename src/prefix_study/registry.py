"""Registries whose entries are one module each: replay policies, routers,
trace formats.

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

    def with_keyword(self, keyword: str) -> list[str]:
        """Entries whose registering call passes `keyword=` (read from the
        sources, like the names: e.g. the offline policies, `kernel=`)."""
        return [n for n, kws in _entry_keywords(self.package, self.register).items() if keyword in kws]

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
    return {name: module for name, (module, _) in _entries(package, register).items()}


@cache
def _entry_keywords(package: str, register: str) -> dict[str, frozenset[str]]:
    return {name: keywords for name, (_, keywords) in _entries(package, register).items()}


@cache
def _entries(package: str, register: str) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (module, keywords of its registering call)."""
    directory = package_dir(package)
    out: dict[str, tuple[str, frozenset[str]]] = {}
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
                found.append((node.lineno, name, frozenset(k.arg for k in node.keywords if k.arg)))
        if not found:
            raise ValueError(f"{path}: a public module of {package} must register an entry with {register}(...) "
                             "(prefix private helpers with `_`)")
        for _, name, keywords in sorted(found):
            if name in out:
                raise ValueError(f"{package}: {name!r} registered by both {out[name][0]} and {module}")
            out[name] = (module, keywords)
    return out


#: The registries. Each package's `__init__` holds the decorator and the
#: registered objects; these say where the entries are.
POLICY_REGISTRY = Registry("prefix_study.replay.kernels", "register_policy", "policy")
ROUTER_REGISTRY = Registry("prefix_study.cluster.routers", "register_router", "router")
TRACE_FORMAT_REGISTRY = Registry("prefix_study.traces.formats", "register_trace_format", "trace format")


def online_policy_names() -> list[str]:
    """Policies with a per-request state machine, which a cluster replica or a
    KV tier can run: every policy but those registered with a whole-trace
    `kernel=` (read from the sources, so config validation loads no numba)."""
    offline = set(POLICY_REGISTRY.with_keyword("kernel"))
    return sorted(n for n in POLICY_REGISTRY.names() if n not in offline)


def unsupported_reason(policy: str) -> str | None:
    """Why a registered policy cannot run on a cluster replica or a KV tier
    (None if it can, or is not a registered policy)."""
    if policy not in POLICY_REGISTRY.names() or policy in online_policy_names():
        return None
    return (f"{policy} is offline: it evicts by each block's next use, but a replica's future "
            "accesses depend on routing decisions not yet made")

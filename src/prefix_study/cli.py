"""`prefix-study`: run the Snakemake DAG for Hydra overrides, or a sweep of them.

    prefix-study [options] [OVERRIDE ...] [-- SNAKEMAKE_ARG ...]

    prefix-study sweep.capacities=[64,1024] -- --cores 2
    prefix-study -m sweep.block_sizes=[16],[32,64] sweep.policies=[lru],[lru,fifo]
    prefix-study --show-config engine.block_sizes=[32]
    prefix-study -n sweep=tiny -- --profile workflow/profiles/slurm

Overrides are plain Hydra overrides. With `--multirun`/`-m`, comma-separated
choices at the top level of an override (`key=a,b`, `key=[1],[2,3]`,
`key=range(0,3)`, `group=glob(*)`) are read with Hydra's override parser and
expanded into their cartesian product in the order Hydra's basic sweeper uses, and the DAG runs once per combination.
Every combination is composed and validated before any job runs; an invalid
one stops the command with the validation message (naming the key) and exit
code 2.

For each combination the command runs

    python -m snakemake --profile workflow/profiles/local --cores N [--dry-run] \
        [SNAKEMAKE_ARG ...] --config overrides=[...] composed=<file>

in the project directory (the one holding the Snakefile; the local profile
is left out when SNAKEMAKE_ARGs choose a profile or an executor), passing the
overrides as a JSON list of strings: Snakemake reads `--config` values with
YAML's base loader, which turns that list back into exactly these strings.
`composed` is the combination's config as the command composed it
(.snakemake/prefix-study/configs/<hash>.yaml): Snakemake's processes read it
instead of composing conf/ again.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from prefix_study.env import apply as apply_env
from prefix_study.pipeline import composed_arg, config_arg

#: Exit code for an invalid configuration or command line (argparse's too).
EXIT_CONFIG = 2

#: Each run's composed config, read by its Snakemake processes (config.resolved).
COMPOSED_DIR = Path(".snakemake") / "prefix-study" / "configs"
#: The profile used unless the passthrough arguments choose one (or an executor).
LOCAL_PROFILE = Path("workflow") / "profiles" / "local"
_PROFILE_OPTIONS = ("--profile", "--workflow-profile", "--executor", "-e")
#: With any of these after `--` the command does not add its default `--cores 2`.
_PARALLELISM_OPTIONS = ("--cores", "-c", "--jobs", "-j")


class UsageError(Exception):
    """A command-line problem (exit code 2)."""


def _split_passthrough(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split at the first `--`: (our arguments, Snakemake's arguments)."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prefix-study",
        usage="%(prog)s [options] [OVERRIDE ...] [-- SNAKEMAKE_ARG ...]",
        description="Run the prefix-study Snakemake pipeline for Hydra config overrides "
                    "(or, with -m, for every combination of a sweep). Every combination is "
                    "validated before any job runs; an invalid one exits with status 2.",
        epilog="Arguments after `--` go to snakemake unchanged, e.g. "
               "`-- --profile workflow/profiles/slurm` or `-- --forcerun replay`. Without a "
               "--profile/--executor there, snakemake runs with workflow/profiles/local.",
    )
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                   help="Hydra override, e.g. sweep.capacities=[64,1024] or sweep=tiny")
    p.add_argument("-m", "--multirun", action="store_true",
                   help="expand comma-separated choices (key=a,b) into a sweep, as Hydra's basic sweeper does")
    p.add_argument("--cores", type=int, default=None,
                   help="snakemake --cores (default 2, unless `--` passes --cores/--jobs or a "
                        "profile/executor)")
    p.add_argument("-n", "--dry-run", action="store_true", help="snakemake --dry-run: list the jobs only")
    p.add_argument("--show-config", action="store_true",
                   help="print the resolved config (YAML) of each combination and exit")
    p.add_argument("--print-run-dir", action="store_true",
                   help="print the run directory of each combination and exit")
    p.add_argument("--clear-stale-lock", action="store_true",
                   help="remove Snakemake's lock if no Snakemake process runs in the project directory "
                        "(left by a killed run; the same as `snakemake --unlock`), then exit. Runs do "
                        "this by themselves")
    p.add_argument("--directory", "-d", type=Path, default=None,
                   help="project directory holding the Snakefile (default: the nearest one above the "
                        "current directory, else the checkout this package is installed from)")
    return p


# --- overrides and sweeps ------------------------------------------------------


def expand_overrides(overrides: Sequence[str], multirun: bool) -> list[list[str]]:
    """The override lists to run: one, or the sweep's cartesian product.

    Overrides are read with Hydra's public parser (with conf/'s groups, so
    `group=glob(*)` works) and expanded here as Hydra's basic sweeper does.
    Raises UsageError for a string Hydra cannot parse, or a sweep without
    `multirun`.
    """
    from prefix_study.config.validate import ConfigError
    from prefix_study.config.compose import hydra_context
    from prefix_study.config.overrides import expand_sweeps, parse_overrides, sweep_overrides

    overrides = list(overrides)
    try:
        with hydra_context():
            parsed = parse_overrides(overrides)
            if not multirun:
                for o in sweep_overrides(parsed):
                    raise UsageError(
                        f"{o.get_key_element()}: {o.input_line!r} is a sweep; add --multirun (-m) to run "
                        "every choice, write a list as key=[a,b], or quote a string as key='a,b'"
                    )
                return [overrides]
            return expand_sweeps(parsed)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def compose_all(combinations: Sequence[Sequence[str]]) -> list[Any]:
    """Compose and validate every combination (raises ConfigError at the first bad one)."""
    from prefix_study.config.compose import compose_config

    return [compose_config(list(c)) for c in combinations]


# --- the project directory and Snakemake --------------------------------------


def _is_project(path: Path) -> bool:
    return (path / "Snakefile").is_file() and (path / "workflow" / "rules").is_dir()


def find_project_dir(directory: Path | None = None) -> Path:
    if directory is not None:
        directory = directory.resolve()
        if not (directory / "Snakefile").is_file():
            raise UsageError(f"--directory {directory}: no Snakefile there")
        return directory
    cwd = Path.cwd().resolve()
    for path in (cwd, *cwd.parents):
        if _is_project(path):
            return path
    from prefix_study.config.compose import CONF_DIR

    if _is_project(CONF_DIR.parent):
        return CONF_DIR.parent
    raise UsageError("no Snakefile found above the current directory; pass --directory")


def _has_option(extra: Sequence[str], options: Sequence[str]) -> bool:
    return any(a == o or a.startswith(o + "=") for a in extra for o in options)


def snakemake_command(overrides: Sequence[str], cores: int | None, dry_run: bool,
                      extra: Sequence[str], project: Path | None = None,
                      composed: Path | None = None) -> list[str]:
    """The Snakemake command line for one combination (`composed`: the file
    of its composed config, `config.resolved.write_config`).

    Without a profile or executor in `extra` (or $SNAKEMAKE_PROFILE) it uses
    the project's local profile, workflow/profiles/local.
    """
    cmd = [sys.executable, "-m", "snakemake"]
    chooses_profile = _has_option(extra, _PROFILE_OPTIONS) or bool(os.environ.get("SNAKEMAKE_PROFILE"))
    local = (project or Path(".")) / LOCAL_PROFILE
    if not chooses_profile and (project is None or (local / "config.yaml").is_file()):
        cmd += ["--profile", str(local)]
    if cores is not None:
        cmd += ["--cores", str(cores)]
    elif not _has_option(extra, _PARALLELISM_OPTIONS) and not chooses_profile:
        cmd += ["--cores", "2"]
    if dry_run:
        cmd.append("--dry-run")
    # --config takes any number of values: it goes last, so targets in `extra`
    # are not read as config entries.
    config = [config_arg(overrides)] + ([composed_arg(composed)] if composed is not None else [])
    return cmd + list(extra) + ["--config", *config]


def run_dir_of(cfg: Any, project: Path) -> Path:
    """The run directory as an absolute path (results_dir is relative to the project)."""
    from prefix_study.pipeline import PipelinePaths

    run = PipelinePaths(cfg).run
    return run if run.is_absolute() else project / run


def _show(path: Path) -> str:
    """A path relative to the current directory when it lies below it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _check_extra(extra: Sequence[str]) -> None:
    for a in extra:
        if a in ("--config", "-C") or a.startswith("--config="):
            raise UsageError("do not pass --config to snakemake: give Hydra overrides instead "
                             "(the command passes them as --config overrides=[...])")


def report_target_reason(extra: Sequence[str], project: Path, run: Path) -> str | None:
    """Why Snakemake will not build the run's report.html with these arguments
    (None: it will). Snakemake's own parser reads `extra`, so targets, and
    options that stop short of the report (--until, --omit-from), are found
    as Snakemake reads them."""
    from snakemake.cli import get_argument_parser

    try:
        args, _ = get_argument_parser().parse_known_args(list(extra))
    except SystemExit:  # Snakemake accepted them, so this parser's version differs: no verdict
        return None
    for option in ("until", "omit_from"):
        if getattr(args, option, None):
            return f"--{option.replace('_', '-')} {' '.join(getattr(args, option))} stops before it"
    targets = list(getattr(args, "targets", None) or [])
    if not targets:
        return None
    report = (run / "report.html").resolve()
    for t in targets:
        if t in ("all", "report_html") or (project / t).resolve() == report:
            return None
    return f"the targets after -- ({' '.join(targets)}) do not include it"


def _explain(exc: BaseException) -> str:
    """The message of `exc` and of the errors it was raised from (Hydra wraps OmegaConf's)."""
    lines: list[str] = []
    while exc is not None:
        for line in str(exc).strip().splitlines():
            if line.strip() and not any(line.strip() in seen for seen in lines):
                lines.append(line)
        exc = exc.__cause__
    return "\n  ".join(lines)


# --- Snakemake's lock ------------------------------------------------------------

#: Where Snakemake's file persistence keeps its locks (<project>/.snakemake/locks/N.{input,output}.lock).
LOCK_DIR = Path(".snakemake") / "locks"
UNLOCK_COMMAND = "snakemake --unlock"


def lock_files(project: Path) -> list[Path]:
    return sorted((project / LOCK_DIR).glob("*.lock"))


def _is_snakemake(argv: list[bytes]) -> bool:
    names = [os.path.basename(a) for a in argv[:2]]
    if b"snakemake" in names:
        return True
    return any(a == b"-m" and b == b"snakemake" for a, b in zip(argv, argv[1:]))


def snakemake_processes(project: Path) -> dict[int, list[bytes]] | None:
    """Local Snakemake processes whose working directory is `project`, with
    their command lines (None: this system has no /proc to look at)."""
    proc = Path("/proc")
    if not (proc / "self" / "cmdline").exists():
        return None
    target = project.resolve()
    found = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if _is_snakemake(argv) and Path(os.readlink(entry / "cwd")).resolve() == target:
                found[int(entry.name)] = argv
        except OSError:  # gone, or not ours to inspect
            continue
    return dict(sorted(found.items()))


def _results_dir_of(argv: list[bytes], project: Path) -> Path | None:
    """The results directory a Snakemake command line writes (None: it cannot be
    told, e.g. a config this version cannot compose)."""
    from prefix_study.config.compose import compose_config
    from prefix_study.config.overrides import overrides_from_snakemake

    args = [a.decode(errors="replace") for a in argv]
    value = next((a[len("overrides="):] for a in reversed(args) if a.startswith("overrides=")), None)
    try:
        overrides = overrides_from_snakemake(json.loads(value) if value is not None else None)
        return _absolute(Path(compose_config(overrides).results_dir), project)
    except Exception:  # noqa: BLE001 - any failure means "cannot tell", the careful answer
        return None


def _absolute(path: Path, project: Path) -> Path:
    return (path if path.is_absolute() else project / path).resolve()


def _lock_pairs(project: Path) -> dict[str, list[Path]]:
    """Snakemake's lock files by run (`N.input.lock` and `N.output.lock` share N)."""
    pairs: dict[str, list[Path]] = {}
    for lock in lock_files(project):
        pairs.setdefault(lock.name.split(".", 1)[0], []).append(lock)
    return pairs


def _locks_under(locks: list[Path], roots: list[Path], project: Path) -> bool:
    for lock in locks:
        for line in lock.read_text(errors="replace").splitlines():
            if line.strip():
                path = _absolute(Path(line.strip()), project)
                if any(path == root or root in path.parents for root in roots):
                    return True
    return False


def clear_stale_lock(project: Path, results_dirs: Sequence[Path] = ()) -> str | None:
    """Remove Snakemake's locks in `project` that no live process holds.

    A run killed with SIGKILL leaves `.snakemake/locks/` behind and the next
    run stops with a LockException. With no Snakemake running in the project
    every lock is stale and all are removed (what `snakemake --unlock` does).
    Runs on other results directories may go on in the same project (Snakemake
    allows it; their files do not overlap): then only the locks naming files
    of `results_dirs` are removed, when no live run writes those directories.
    Returns what was done or found, or None when there is no lock.
    """
    pairs = _lock_pairs(project)
    if not pairs:
        return None
    live = snakemake_processes(project)
    where = project / LOCK_DIR
    if live is None:
        return (f"Snakemake's lock {where} exists and this system cannot tell whether a run holds it; "
                f"if no run is going on, clear it with `{UNLOCK_COMMAND}` in {project}")
    if not live:
        stale = [lock for locks in pairs.values() for lock in locks]
        for lock in stale:
            lock.unlink(missing_ok=True)
        return (f"removed a stale Snakemake lock ({len(stale)} files in {where}) left by a killed run: no "
                f"Snakemake process runs in {project} (the same as `{UNLOCK_COMMAND}` there)")
    pids = ", ".join(map(str, live))
    held = {pid: _results_dir_of(argv, project) for pid, argv in live.items()}
    ours = [_absolute(Path(d), project) for d in results_dirs]
    if not ours or any(d is None or d in ours for d in held.values()):
        return (f"Snakemake's lock {where} is held by a running Snakemake (pid {pids}); wait for it, "
                f"or stop it and run `{UNLOCK_COMMAND}` in {project}")
    stale = [lock for locks in pairs.values() if _locks_under(locks, ours, project) for lock in locks]
    if not stale:
        return None
    for lock in stale:
        lock.unlink(missing_ok=True)
    return (f"removed a stale Snakemake lock ({len(stale)} files in {where}) left by a killed run on "
            f"{', '.join(map(str, ours))}; the running Snakemake (pid {pids}) writes other results "
            "directories and keeps its lock")


# --- main ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    from omegaconf import OmegaConf

    from prefix_study.config.resolved import write_config
    from prefix_study.config.validate import ConfigError

    ours, extra = _split_passthrough(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_intermixed_args(ours)
    if args.clear_stale_lock:
        try:
            project = find_project_dir(args.directory)
        except UsageError as exc:
            print(f"prefix-study: error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        message = clear_stale_lock(project)
        if message:
            print(f"prefix-study: {message}", file=sys.stderr)
        return 0
    try:
        _check_extra(extra)
        combinations = expand_overrides(args.overrides, args.multirun)
        cfgs = compose_all(combinations)
        project = find_project_dir(args.directory)
    except (UsageError, ConfigError) as exc:
        print(f"prefix-study: error: {_explain(exc)}", file=sys.stderr)
        return EXIT_CONFIG

    if args.show_config:
        for i, (combo, cfg) in enumerate(zip(combinations, cfgs)):
            if len(cfgs) > 1:
                print(("---\n" if i else "") + f"# [{i + 1}/{len(cfgs)}] overrides: {' '.join(combo)}")
            print(OmegaConf.to_yaml(cfg, resolve=True), end="")
        return 0
    run_dirs = [run_dir_of(cfg, project) for cfg in cfgs]
    results_dirs = [_absolute(Path(cfg.results_dir), project) for cfg in cfgs]
    if args.print_run_dir:
        for run in run_dirs:
            print(_show(run))
        return 0

    env = apply_env(dict(os.environ))
    n = len(combinations)
    dry_run = args.dry_run or any(a in ("-n", "--dry-run", "--dryrun") for a in extra)
    if not dry_run:  # a dry run takes no lock
        message = clear_stale_lock(project, results_dirs)
        if message:
            print(f"prefix-study: {message}", file=sys.stderr, flush=True)
    for i, (combo, cfg, run) in enumerate(zip(combinations, cfgs, run_dirs), start=1):
        print(f"==> [{i}/{n}] overrides: {' '.join(combo) or '(none)'}", flush=True)
        print(f"    run directory: {_show(run)}", flush=True)
        composed = write_config(cfg, project / COMPOSED_DIR)
        cmd = snakemake_command(combo, args.cores, args.dry_run, extra, project, composed)
        print(f"    $ {shlex.join(['snakemake', *cmd[3:]])}", file=sys.stderr, flush=True)
        rc = subprocess.call(cmd, cwd=project, env=env)
        if rc != 0:
            print(f"prefix-study: error: snakemake failed (exit {rc}) for [{i}/{n}] {' '.join(combo)}",
                  file=sys.stderr)
            if lock_files(project) and not dry_run:
                found = clear_stale_lock(project, results_dirs)
                if found:
                    print(f"prefix-study: if snakemake said the directory is locked: {found}", file=sys.stderr)
            return rc
        if not dry_run:
            not_built = report_target_reason(extra, project, run)
            if not_built is None and (run / "report.html").is_file():
                print(f"    report: {_show(run / 'report.html')}", flush=True)
            else:
                print(f"    report: not built by this run ({not_built or 'report.html is missing'})", flush=True)
    if n > 1:
        print("run directories:")
        for run in run_dirs:
            print(f"  {_show(run)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

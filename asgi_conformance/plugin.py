"""The pytest plugin (entry point ``pytest11``): options, targets, fixtures, verdicts.

Inert unless a target is chosen: without ``--target`` / ``--target-cmd`` it adds
options and fixtures and touches nothing else. With one, ``pytest`` alone (no
paths) runs the catalogue in ``suites/``, parametrized over the chosen targets
(session scope, so each target's server starts once per pytest process).
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import itertools
import json
import os
import shlex
import signal
import threading
import traceback
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from . import dedicated
from . import targets as targets_module
from ._version import __version__
from .baseline import FAILING, Baseline, BaselineError, load_all
from .concurrency import Outcome, RunAhead
from .process import ServerProcess, TargetDied, TargetStartError, TargetUnresponsive, stop_together
from .results import PROPERTY, ResultsCollector, render_value
from .scenarios import AREAS, Scenario, scenario_of
from .server import APP_MODULE, Launcher, Server
from .targets import NEEDS_TARGET_ENV, BindMode, Target, TargetError
from .timing import Timeouts
from .verdicts import (
    Cell,
    Level,
    ScenarioFailed,
    Unsupported,
    Verdict,
    activate,
    deactivate,
    is_missing,
)

__all__ = ["RUN_KEY", "RunState", "suites_dir"]

T = TypeVar("T")
MUTANT_ENV = "ASGI_CONFORMANCE_MUTANT"
MAX_MESSAGE = 4000
MAX_TRACE_LINES = 40


@dataclass
class RunState:
    """Everything the run was asked for, resolved once in ``pytest_configure``."""

    targets: list[Target]
    timeouts: Timeouts
    bind: BindMode | None
    mutant: str | None
    scenario_patterns: list[str]
    workdir: str | None
    rerun_base: dict[str, str]
    baselines: dict[str, Baseline] = field(default_factory=dict)
    baseline_update: bool = False
    frameworks: list[str] = field(default_factory=list)
    """--framework: the web frameworks whose scenarios (fw.*, chk.*) run; none by default."""
    concurrency: int = 1
    """--conformance-concurrency: how many cases of a target run side by side (1: one at a time)."""
    ahead: RunAhead[pytest.Item] | None = None
    processes: dict[str, ServerProcess] = field(default_factory=dict)
    launchers: list[Launcher] = field(default_factory=list)
    session_launchers: dict[str, Launcher] = field(default_factory=dict)
    """Per target: the one ``session_launcher``, shared by its fixture and the dedicated runs
    started ahead (asgi_conformance.dedicated)."""
    quiet: dict[str, ServerProcess | BaseException] = field(default_factory=dict)
    """Per target: the second shared process that only ``alone`` cases use when cases run ahead
    (or why it could not start)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bind_for(self, target: Target) -> BindMode:
        return self.bind if self.bind in target.bind_modes else target.default_bind


RUN_KEY = pytest.StashKey[RunState]()
ITEM_KEY = pytest.StashKey[tuple[Scenario, Target]]()
CELL_KEY = pytest.StashKey[Cell]()
TOKEN_KEY = pytest.StashKey[Any]()
CALL_VERDICT_KEY = pytest.StashKey[Verdict]()
AHEAD_KEY = pytest.StashKey[Outcome]()
DEFAULT_CONCURRENCY = 12
WAITING_LANE = 16
"""Threads for the cases that wait out a server's own timeout (declared ``waits``), the ``alone``
chain and the dedicated runs: a lane of their own beside ``--conformance-concurrency``'s."""
OVERTIME_S = 1.0
"""A case still running after this long (times the timeout scale) is waiting, not working: one
more case starts beside it, up to ``OVERTIME_THREADS`` beyond ``--conformance-concurrency``."""
OVERTIME_THREADS = 12
AHEAD_WAIT_S = 600.0
"""How long pytest's loop waits for a case running ahead (each of its own waits is bounded far below)."""
AHEAD_FIXTURES = frozenset({"server", "target", "launcher"})
"""The fixtures a case may ask for and still run ahead in a thread (the plugin provides them there)."""


def suites_dir() -> Path:
    """The catalogue: inside the installed package, or suites/ beside it in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "suites", here.parent / "suites"):
        if candidate.is_dir():
            return candidate
    raise pytest.UsageError("asgi-conformance: the suites directory is missing from this installation")


def _interrupt_on_sigterm() -> None:
    """A run ended with SIGTERM (a cancelled CI job, ``timeout``) tears down like Ctrl-C, so
    every server it started is stopped; left alone, the default handler would orphan them."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and threading.current_thread() is threading.main_thread():

        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, interrupt)


def suite_paths(directory: Path, patterns: list[str]) -> list[str]:
    """The suite files that can hold scenarios matching ``patterns`` (each an ID or a dotted
    prefix), found through the areas IDs name; the whole directory when there are none, or
    when a pattern names no known area (it is then reported as selecting nothing)."""
    if not patterns:
        return [str(directory)]
    areas: set[str] = set()
    for pattern in (p.rstrip(".") for p in patterns):
        found = {
            area
            for prefix, (area, _) in AREAS.items()
            if prefix == pattern or prefix.startswith(pattern + ".") or pattern.startswith(prefix + ".")
        }
        if not found:
            return [str(directory)]
        areas |= found
    files = [directory / f"test_{area}.py" for area in sorted(areas)]
    if not all(f.is_file() for f in files):
        return [str(directory)]
    return [str(f) for f in files]


# -- options ---------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("asgi-conformance", "ASGI server conformance (asgi-conformance)")
    group.addoption(
        "--target",
        action="append",
        default=[],
        dest="conformance_targets",
        metavar="NAME",
        help="Run the catalogue against a built-in or registered target; repeatable; 'all' for every installed "
        "built-in (see: asgi-conformance targets)",
    )
    group.addoption(
        "--target-cmd",
        dest="conformance_target_cmd",
        metavar="CMD",
        help="Run the catalogue against any server: a command with {app} and one of {port} (with {host}), "
        "{uds} or {fd}; {python} is this interpreter",
    )
    group.addoption(
        "--target-name",
        dest="conformance_target_name",
        metavar="NAME",
        help="Name of the --target-cmd target in results (default: custom)",
    )
    group.addoption(
        "--target-capabilities",
        dest="conformance_target_capabilities",
        metavar="LIST",
        help="Comma-separated capabilities the --target-cmd server declares (default: lifespan,websocket; "
        f"known: {', '.join(sorted(targets_module.CAPABILITIES))})",
    )
    group.addoption(
        "--scenario",
        action="append",
        default=[],
        dest="conformance_scenarios",
        metavar="ID",
        help="Run only this scenario ID, or IDs under this prefix (e.g. http.scope); repeatable",
    )
    group.addoption(
        "--framework",
        action="append",
        default=[],
        dest="conformance_frameworks",
        metavar="NAME",
        help="Also run the framework scenarios (fw.NAME.*, chk.NAME.*) of this web framework: starlette, fastapi, "
        "litestar, quart, django; repeatable or comma-separated; 'all' for every installed one (default: none)",
    )
    group.addoption(
        "--bind",
        dest="conformance_bind",
        choices=["fd", "port", "uds"],
        help="How servers listen, where the target supports it (default: per target)",
    )
    group.addoption(
        "--conformance-json",
        dest="conformance_json",
        metavar="PATH",
        help="Write the results JSON (every target x scenario cell) to PATH",
    )
    group.addoption(
        "--conformance-timeout-scale",
        dest="conformance_timeout_scale",
        type=float,
        default=None,
        metavar="FACTOR",
        help="Multiply every deadline by FACTOR (slow machines); default 1",
    )
    group.addoption(
        "--conformance-concurrency",
        dest="conformance_concurrency",
        type=int,
        default=None,
        metavar="N",
        help=f"Run up to N cases of a target side by side (threads; default {DEFAULT_CONCURRENCY}, plus "
        f"{WAITING_LANE} for the cases that wait out a server's own timeout, and up to {OVERTIME_THREADS} more "
        f"beside cases still running after {OVERTIME_S:g} s); 1 runs one case at a time. "
        "Under pytest-xdist each worker runs its cases one at a time",
    )
    group.addoption(
        "--conformance-dir",
        dest="conformance_dir",
        metavar="DIR",
        help="Keep server logs and journals in DIR (default: pytest's temporary directory)",
    )
    group.addoption(
        "--conformance-mutant",
        dest="conformance_mutant",
        metavar="NAME",
        help="Self-test: wrap the scenario app in mutant NAME, a deliberate bug the catalogue must "
        "catch (see asgi_conformance.apps.mutants)",
    )
    group.addoption(
        "--conformance-html",
        dest="conformance_html",
        metavar="PATH",
        help="Write the HTML report (one self-contained file) to PATH after the run",
    )
    group.addoption(
        "--baseline",
        action="append",
        default=[],
        dest="conformance_baselines",
        metavar="PATH",
        help='A target\'s known-failure baseline (TOML, with target = "ID"); repeatable. Listed failures are '
        "expected (xfailed); a listed cell that passes fails the run as stale",
    )
    group.addoption(
        "--baseline-update",
        action="store_true",
        default=False,
        dest="conformance_baseline_update",
        help="After the run, write the current failures back to the --baseline file(s), keeping the reasons of "
        "entries that remain (a missing file is created for the target its name names, <target>.toml, "
        "or for the run's only target)",
    )
    parser.addini("conformance_targets", type="linelist", default=[], help="Targets to run when --target is not given")
    parser.addini(
        "conformance_timeout_scale", type="string", default="1", help="Multiply every deadline by this factor"
    )
    parser.addini(
        "conformance_concurrency",
        type="string",
        default=str(DEFAULT_CONCURRENCY),
        help="How many cases of a target run side by side when --conformance-concurrency is not given",
    )


# -- configuration -----------------------------------------------------------------------


def _resolve(config: pytest.Config) -> RunState:
    names: list[str] = config.getoption("conformance_targets") or []
    command: str | None = config.getoption("conformance_target_cmd")
    if not names and not command:
        names = list(config.getini("conformance_targets") or [])
    if command is None and (
        config.getoption("conformance_target_name") or config.getoption("conformance_target_capabilities")
    ):
        raise TargetError("--target-name and --target-capabilities only apply to --target-cmd")
    chosen = targets_module.resolve(names)
    rerun = {t.id: f"--target={t.id}" for t in chosen}
    if command:
        custom = targets_module.from_command(
            command,
            config.getoption("conformance_target_name"),
            config.getoption("conformance_target_capabilities"),
        )
        if custom.id in rerun:
            raise TargetError(f"--target-name={custom.id!r} clashes with --target={custom.id}")
        chosen.append(custom)
        caps = config.getoption("conformance_target_capabilities")
        rerun[custom.id] = f"--target-cmd={shlex.quote(command)} --target-name={custom.id}" + (
            f" --target-capabilities={caps}" if caps else ""
        )
    mutant: str | None = config.getoption("conformance_mutant")
    if mutant:
        from .apps.mutants import MUTANTS, resolve

        try:
            resolve(mutant)  # a name, or "fixer+name"
        except KeyError as exc:
            raise TargetError(f"unknown mutant {exc.args[0]!r}; choose from: {', '.join(sorted(MUTANTS))}") from None
        chosen = [t.with_env(f"+{mutant}", {MUTANT_ENV: mutant}) for t in chosen]
        rerun = {f"{k}+{mutant}": f"{v} --conformance-mutant={mutant}" for k, v in rerun.items()}
    scale = _option_or_ini(config, "conformance_timeout_scale", float, "a number")
    if not scale > 0:
        raise TargetError("--conformance-timeout-scale must be a positive number")
    concurrency = _option_or_ini(config, "conformance_concurrency", int, "a whole number")
    if concurrency < 1:
        raise TargetError("--conformance-concurrency must be at least 1")
    bind: BindMode | None = config.getoption("conformance_bind")
    baselines, update = _baselines(config, chosen)
    frameworks = _frameworks(config)
    return RunState(
        targets=chosen,
        timeouts=Timeouts(scale=scale),
        bind=bind,
        mutant=mutant,
        scenario_patterns=list(config.getoption("conformance_scenarios") or []),
        workdir=config.getoption("conformance_dir"),
        rerun_base=rerun,
        baselines=baselines,
        baseline_update=update,
        frameworks=frameworks,
        concurrency=concurrency,
    )


def _option_or_ini(config: pytest.Config, name: str, convert: Callable[[str], T], what: str) -> T:
    """The option ``name`` if given, else its ini key of the same name (a TargetError if that is not ``what``)."""
    value: T | None = config.getoption(name)
    if value is not None:
        return value
    try:
        return convert(config.getini(name))
    except ValueError as exc:
        raise TargetError(f"{name} must be {what}: {exc}") from exc


def _frameworks(config: pytest.Config) -> list[str]:
    """--framework values as names (one-line TargetError for an unknown or missing one)."""
    from .apps.frameworks import FrameworkError, resolve

    try:
        return resolve(list(config.getoption("conformance_frameworks") or []))
    except FrameworkError as exc:
        raise TargetError(str(exc)) from None


def _framework_skip(declared: Scenario, state: RunState) -> str | bool:
    """For a framework scenario: False (it runs), True (deselected: its framework was not
    chosen) or the reason it is unsupported (named by --scenario, but not installed)."""
    if declared.framework is None or declared.framework in state.frameworks:
        return False
    named = any(
        p.rstrip(".") == prefix or p.startswith(prefix + ".")
        for p in state.scenario_patterns
        for prefix in (f"fw.{declared.framework}", f"chk.{declared.framework}")
    )
    if not named:
        return True
    from .apps.frameworks import FRAMEWORKS

    known = FRAMEWORKS.get(declared.framework)
    if known is not None and not known.installed:
        return f"unsupported: framework {known.name} is not installed; pip install 'asgi-conformance[{known.extra}]'"
    return False


def _baselines(config: pytest.Config, chosen: list[Target]) -> tuple[dict[str, Baseline], bool]:
    paths: list[str] = list(config.getoption("conformance_baselines") or [])
    update = bool(config.getoption("conformance_baseline_update"))
    if update and not paths:
        raise TargetError("--baseline-update needs --baseline=PATH (the file to write)")
    try:
        if not update:
            return load_all(paths), False
        # Updating: a file that does not exist yet is created for the target its name names
        # (<target>.toml), else for the run's only target.
        existing = [p for p in paths if Path(p).exists()]
        found = load_all(existing)
        run_ids = {t.id for t in chosen}
        for path in (p for p in paths if not Path(p).exists()):
            stem = Path(path).stem
            if stem in run_ids:
                tid = stem
            elif stem in targets_module.known_targets():
                continue  # that target's file, and it is not in this run
            elif len(chosen) == 1:
                tid = chosen[0].id
            else:
                raise TargetError(f"--baseline-update: {path} does not exist; name it <target>.toml to create it")
            if tid in found:
                raise TargetError(f"--baseline-update: {tid} already has {found[tid].path}")
            found[tid] = Baseline(Path(path), tid)
        return found, True
    except BaselineError as exc:
        raise TargetError(str(exc)) from None


def pytest_configure(config: pytest.Config) -> None:
    try:
        state = _resolve(config)
    except TargetError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[RUN_KEY] = state
    if not state.targets and os.environ.get(NEEDS_TARGET_ENV) and not hasattr(config, "workerinput"):
        raise pytest.UsageError(
            "asgi-conformance run: no target; pass --target=NAME (or --target=all), "
            "--target-cmd='...', or set conformance_targets in the pytest ini file "
            "(see `asgi-conformance targets`)"
        )
    if not state.targets:
        return
    _interrupt_on_sigterm()
    if state.concurrency > 1 and not hasattr(config, "workerinput"):
        # (An xdist worker is handed its items one batch at a time, so it cannot run ahead.)
        state.ahead = RunAhead(
            state.concurrency,
            functools.partial(_run_ahead, state),
            waiting=WAITING_LANE,
            overtime=OVERTIME_S * state.timeouts.scale,
            overtime_threads=OVERTIME_THREADS,
        )
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        # `pytest --target=X` with no paths runs the catalogue, wherever pytest is run from;
        # with --scenario, only the files of the areas those IDs name are collected.
        config.args = suite_paths(suites_dir(), state.scenario_patterns)
    if not hasattr(config, "workerinput"):
        collector = ResultsCollector(
            config,
            config.getoption("conformance_json"),
            [t.id for t in state.targets],
            {"timeout_scale": state.timeouts.scale, "mutant": state.mutant},
            html_path=config.getoption("conformance_html"),
        )
        if state.baseline_update:
            collector.finishers.append(lambda document: _update_baselines(state, document))
        config.pluginmanager.register(collector, "asgi-conformance-results")
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(_XdistController(collector), "asgi-conformance-xdist")


def _update_baselines(state: RunState, document: dict[str, Any]) -> str | None:
    """--baseline-update: rewrite each run target's baseline from this run's cells."""
    written = []
    versions = {t["id"]: t.get("version") for t in document["targets"]}
    for tid, book in state.baselines.items():
        if tid not in versions:
            continue
        cells = [c for c in document["results"] if c["target"] == tid]
        updated = book.updated(cells, versions[tid])
        if not updated.entries and not book.path.exists():
            continue  # nothing fails: no new file
        updated.write()
        known = sum(1 for e in updated.entries if not e.flaky)
        written.append(f"{book.path} ({known} known failures)")
    return f"baseline updated: {', '.join(written)}" if written else None


class _XdistController:
    """Receives each worker's server provenance (only registered when xdist is present)."""

    def __init__(self, collector: ResultsCollector) -> None:
        self.collector = collector

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        raw = getattr(node, "workeroutput", {}).get(PROPERTY)
        if raw:
            self.collector.add_processes(json.loads(raw))


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(RUN_KEY, None)
    if state is None or not state.targets:
        return None
    lines = [f"asgi-conformance {__version__}: {len(state.targets)} target(s), timeout scale {state.timeouts.scale:g}"]
    for t in state.targets:
        lines.append(f"  {t.id}: {t.name} {t.version or '(version unknown)'} [{t.variant}], bind {state.bind_for(t)}")
    if state.frameworks:
        from .apps.frameworks import FRAMEWORKS

        shown = ", ".join(f"{n} {FRAMEWORKS[n].version or '(version unknown)'}" for n in state.frameworks)
        lines.append(f"  frameworks: {shown}")
    if state.mutant:
        lines.append(f"  MUTANT {state.mutant!r} is wrapped around the scenario app (self-test run)")
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash.get(RUN_KEY, None)
    chosen = state.targets if state else []
    if not chosen:
        raise pytest.UsageError(
            "asgi-conformance: no target chosen; pass --target=NAME (see `asgi-conformance targets`) "
            "or --target-cmd='CMD {app} --port {port}'"
        )
    metafunc.parametrize("target", chosen, ids=[t.id for t in chosen], indirect=True, scope="session")


def _selected(scenario_id: str, patterns: list[str]) -> bool:
    return not patterns or any(scenario_id == p or scenario_id.startswith(p.rstrip(".") + ".") for p in patterns)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash.get(RUN_KEY, None)
    if state is None or not state.targets:
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        declared = scenario_of(getattr(item, "function", None))
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("target") if callspec is not None else None
        if declared is None or not isinstance(target, Target):
            keep.append(item)
            continue
        if not _selected(declared.id, state.scenario_patterns):
            dropped.append(item)
            continue
        # A framework's scenarios run when --framework chose it, or --scenario names its IDs.
        framework_skip = _framework_skip(declared, state)
        if framework_skip is True:
            dropped.append(item)
            continue
        item.stash[ITEM_KEY] = (declared, target)
        if isinstance(framework_skip, str):
            item.add_marker(pytest.mark.skip(reason=framework_skip))
        missing = sorted(declared.requires - target.all_capabilities)
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"unsupported: {target.id} does not declare {', '.join(missing)}"))
        keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    if state.ahead is not None:
        items[:] = _ordered_to_run_ahead(items)
    if not hasattr(config, "workerinput"):
        _check_baselines(state)  # (xdist workers leave it to the controller: pytest_sessionstart)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """With pytest-xdist the controller collects nothing: check baselines against the catalogue here."""
    config = session.config
    state = config.stash.get(RUN_KEY, None)
    if state is None or not state.baselines or hasattr(config, "workerinput"):
        return
    if getattr(config.option, "dist", "no") == "no" or config.args_source == pytest.Config.ArgsSource.ARGS:
        return
    from .cli import load_suites

    load_suites()
    _check_baselines(state)


def _check_baselines(state: RunState) -> None:
    """Every baseline entry must name a scenario of the catalogue (one-line usage error).

    A ``--scenario`` run collects only the suite files of its areas, so an entry for another
    area is looked up in the whole catalogue before it counts as unknown."""
    if not state.baselines:
        return
    from .scenarios import all_scenarios

    known = all_scenarios()
    wanted = {entry.scenario for book in state.baselines.values() for entry in book.entries}
    if not wanted <= set(known):
        from .cli import load_suites

        load_suites()
        known = all_scenarios()
    for book in state.baselines.values():
        for entry in book.entries:
            if entry.scenario not in known:
                raise pytest.UsageError(
                    f"baseline {book.path}: scenario {entry.scenario!r} does not exist (see: asgi-conformance list)"
                )


def _apply_baseline(state: RunState, target: Target, declared: Scenario, verdict: Verdict, report: Any) -> str | None:
    """Turn a listed failure into an expected one, a listed pass into a stale failure.

    Returns the cell's ``baseline`` tag: "known" (a known_failure entry that failed),
    "flaky" (a known_flaky entry, whatever happened), "stale" (a known_failure entry that
    passed: the run fails, like a strict xfail), or None (no entry applies).
    """
    book = state.baselines.get(target.id)
    entry = book.lookup(declared.id, target.version) if book is not None else None
    if book is None or entry is None:
        return None
    if verdict.value in FAILING:
        report.outcome = "skipped"
        report.wasxfail = f"baseline ({book.path.name}): {entry.reason}"
        return "flaky" if entry.flaky else "known"
    if entry.flaky:
        return "flaky"
    if verdict in (Verdict.PASS, Verdict.INFO):
        report.outcome = "failed"
        report.longrepr = (
            f"STALE baseline entry: {declared.id} on {target.id} {target.version or ''} is now {verdict.value}, "
            f"but {book.path} lists it as a known failure ({entry.reason}). "
            "Remove the entry, or rewrite the file with --baseline-update."
        )
        return "stale"
    return None


# -- fixtures ----------------------------------------------------------------------------


def _state(request: pytest.FixtureRequest) -> RunState:
    return request.config.stash[RUN_KEY]


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    """The target under test (parametrized over --target / --target-cmd)."""
    param = getattr(request, "param", None)
    if not isinstance(param, Target):
        raise pytest.UsageError("the `target` fixture needs --target or --target-cmd")
    return param


@pytest.fixture(scope="session")
def conformance_workdir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where server logs and journals of this pytest process go."""
    chosen = _state(request).workdir
    if chosen:
        worker = str(getattr(request.config, "workerinput", {}).get("workerid", "main"))
        path = Path(chosen).resolve() / worker
        path.mkdir(parents=True, exist_ok=True)
        return path
    made: Path = tmp_path_factory.mktemp("asgi-conformance")
    return made


@pytest.fixture(scope="session")
def target_process(
    request: pytest.FixtureRequest, target: Target, conformance_workdir: Path
) -> Iterator[ServerProcess]:
    """The target's shared server: one process per target per pytest process."""
    state = _state(request)
    workdir = conformance_workdir / target.id
    workdir.mkdir(parents=True, exist_ok=True)
    process = _shared_server(state, target, workdir, "server")
    state.processes[target.id] = process
    try:
        process.start()
        yield process
    finally:
        if state.ahead is not None:
            # No case may still be using the server when it stops.
            state.ahead.drain(target.id, timeout=state.timeouts.request * 4)
        # The target's processes stop side by side: the shared one, the quiet one, and what
        # cases run ahead started through the session launcher (if its fixture never ran).
        ending = [process]
        quiet = state.quiet.pop(target.id, None)
        if isinstance(quiet, ServerProcess):
            ending.append(quiet)
        shared = state.session_launchers.pop(target.id, None)
        if shared is not None:
            dedicated.forget(shared)
            ending.extend(shared.started)
        stop_together(ending)


@pytest.fixture
def server(request: pytest.FixtureRequest, target: Target, target_process: ServerProcess) -> Iterator[Server]:
    """This test's view of the target's shared server."""
    state = _state(request)
    if state.ahead is not None and state.ahead.planned(request.node):
        # The case runs ahead in a thread, which makes these same checks at the time it runs.
        yield Server(target, target_process, state.timeouts)
        return
    _require_alive(target_process)
    cell = request.node.stash.get(CELL_KEY, None)
    if cell is not None:
        cell.logs.append(("server log", target_process, target_process.log_offset()))
    yield Server(target, target_process, _state(request).timeouts)
    if request.node.stash.get(CALL_VERDICT_KEY, None) not in (None, Verdict.PASS, Verdict.INFO, Verdict.UNSUPPORTED):
        # A cell that did not pass: is it the rule, or a server that stopped answering? One probe
        # of the control path; a hung server makes this cell and its remaining ones `error` at once.
        target_process.require_responsive(_state(request).timeouts.request)
    _require_alive(target_process)


def _shared_server(state: RunState, target: Target, workdir: Path, label: str) -> ServerProcess:
    """A process of the target serving the catalogue's app, as the run binds it (not started)."""
    return ServerProcess(
        target,
        app=f"{APP_MODULE}:app",
        workdir=workdir,
        timeouts=state.timeouts,
        bind=state.bind_for(target),
        label=label,
    )


def _require_alive(process: ServerProcess) -> None:
    status = process.exit_status()
    if status is not None:
        raise TargetDied(
            f"{process.target.id}: the server exited (status {status}); its remaining cells cannot be judged\n"
            f"{process.log_tail()}"
        )
    if process.unresponsive is not None:
        raise TargetUnresponsive(process.unresponsive)


def _launcher(request: pytest.FixtureRequest, target: Target, workdir: Path) -> Launcher:
    return _new_launcher(_state(request), target, workdir / target.id)


def _new_launcher(state: RunState, target: Target, path: Path) -> Launcher:
    path.mkdir(parents=True, exist_ok=True)
    launcher = Launcher(target, path, state.timeouts, state.bind_for(target), {})
    state.launchers.append(launcher)
    return launcher


@pytest.fixture
def launcher(request: pytest.FixtureRequest, target: Target, conformance_workdir: Path) -> Iterator[Launcher]:
    """Starts dedicated processes of the target for this test; all stopped after it."""
    started = _launcher(request, target, conformance_workdir)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture(scope="session")
def session_launcher(request: pytest.FixtureRequest, target: Target, conformance_workdir: Path) -> Iterator[Launcher]:
    """Like ``launcher``, for dedicated runs that several scenarios observe; stopped at session end."""
    started = _session_launcher(_state(request), target, conformance_workdir / target.id)
    try:
        yield started
    finally:
        started.stop_all()


def _session_launcher(state: RunState, target: Target, path: Path) -> Launcher:
    """The target's one session launcher: the fixture's, also given to cases that run ahead."""
    with state.lock:
        found = state.session_launchers.get(target.id)
        if found is None:
            found = state.session_launchers[target.id] = _new_launcher(state, target, path)
        return found


# -- running ahead -----------------------------------------------------------------------
#
# Once a target's shared server has served one case the ordinary way (so a target that dies
# or hangs from the start costs what it always did), every later case of that target that
# needs nothing but the shared server, the target and a launcher of its own
# runs in a thread ahead of pytest's loop (asgi_conformance.concurrency). The thread does what
# the fixtures would, at the time the case runs: the liveness check before, the probe after a
# cell that did not pass, the launcher's stop; pytest's phases replay each phase's exception
# and time.


def _case_args(item: pytest.Item) -> list[str]:
    """The names a case function asks for (what pytest fills from fixtures or parameters)."""
    function = getattr(item, "function", None)
    if function is None:
        return []
    parameters = inspect.signature(function).parameters.values()
    return [p.name for p in parameters if p.default is inspect.Parameter.empty]


def _can_run_ahead(item: pytest.Item) -> bool:
    """A case runs ahead when the plugin can give it everything it asks for, outside pytest."""
    pair = item.stash.get(ITEM_KEY, None)
    if pair is None:
        return False
    if any(True for name in ("skip", "skipif", "usefixtures") for _ in item.iter_markers(name)):
        return False
    callspec = getattr(item, "callspec", None)
    params = set(callspec.params) if callspec is not None else set()
    return set(_case_args(item)) - params <= AHEAD_FIXTURES


def _ordered_to_run_ahead(items: list[pytest.Item]) -> list[pytest.Item]:
    """Each target's stretch of items, in the order that lets most of it overlap:

    1. the first case that can run ahead and uses the shared server (not an ``alone`` one): run
       the ordinary way, it starts the others (``_start_ahead``);
    2. the cases that cannot run ahead, in pytest's loop while the pool works through the rest;
    3. the rest, each reported as soon as its thread has finished it.
    """

    def target_of(item: pytest.Item) -> str | None:
        pair = item.stash.get(ITEM_KEY, None)
        return pair[1].id if pair is not None else None

    ordered: list[pytest.Item] = []
    for _, stretch in itertools.groupby(items, key=target_of):
        run = list(stretch)
        ahead = [i for i in run if _can_run_ahead(i)]
        first = next((i for i in ahead if "server" in _case_args(i) and not _is_alone(i)), None)
        serial = [i for i in run if i not in ahead]
        ordered.extend(([first] if first is not None else []) + serial + [i for i in ahead if i is not first])
    return ordered


def _is_alone(item: pytest.Item) -> bool:
    pair = item.stash.get(ITEM_KEY, None)
    return pair is not None and pair[0].alone


def _start_ahead(item: pytest.Item, state: RunState) -> None:
    """After a target's first shared-server case: its later cases that can, run ahead."""
    ahead = state.ahead
    pair = item.stash.get(ITEM_KEY, None)
    if ahead is None or pair is None or _is_alone(item) or "server" not in _case_args(item):
        return
    target = pair[1]
    process = state.processes.get(target.id)
    if ahead.started(target.id) or process is None or not process.alive or process.unresponsive is not None:
        return
    items = item.session.items
    later = [i for i in items[items.index(item) + 1 :] if i.stash.get(ITEM_KEY, (None, None))[1] is target]
    chosen = [i for i in later if _can_run_ahead(i)]
    # The dedicated runs that the cases left to pytest's loop will ask for start first.
    skipped = ("skip", "skipif")
    names = [
        name
        for i in later
        if i not in chosen and not any(True for m in skipped for _ in i.iter_markers(m))
        for name in getattr(i, "fixturenames", ())
    ]
    if dedicated.registered(names):
        shared = _session_launcher(state, target, process.workdir)
        dedicated.start(shared, names, functools.partial(ahead.call, target.id))

    # ``alone`` cases observe a server process as a whole (its log): they share a second
    # process of the target that no other case touches (``_quiet_process``), in turn, in their
    # order, in one thread.
    def chain(i: pytest.Item) -> str | None:
        return "alone" if _is_alone(i) else None

    # What is likely to take longest goes first, so none is left to finish last (the sort is
    # stable: a chain keeps its order): the chain and the cases that wait out a server's own
    # timeout; then the cases that start processes of their own; then the wire-level and
    # WebSocket cases, where a server that does not answer (malformed input, a WebSocket
    # feature it lacks) leaves the case to its deadline.
    def rank(i: pytest.Item) -> int:
        declared = i.stash[ITEM_KEY][0]
        if declared.waits is not None or chain(i) is not None:
            return 0
        if "launcher" in _case_args(i):
            return 1
        return 2 if declared.id.startswith(("wire.", "ws.")) else 3

    chosen.sort(key=rank)
    ahead.submit(target.id, chosen, chain=chain, waits=lambda i: rank(i) == 0)


def _quiet_process(state: RunState, target: Target) -> ServerProcess:
    """The target's second shared process, for the ``alone`` chain: started on first use, beside
    the shared one and like it; stopped with it. A start that failed fails every ``alone`` case."""
    with state.lock:
        found = state.quiet.get(target.id)
        if found is None:
            process = _shared_server(state, target, state.processes[target.id].workdir, "quiet-server")
            try:
                process.start()
                found = process
            except (TargetStartError, TargetDied, TargetUnresponsive) as exc:
                process.stop()
                found = exc
            state.quiet[target.id] = found
    if isinstance(found, BaseException):
        raise found
    return found


def _run_ahead(state: RunState, item: pytest.Item) -> Outcome:
    """One case's phases, in a thread: what its fixtures and its function would do."""
    target = item.stash[ITEM_KEY][1]
    names = _case_args(item)
    callspec = getattr(item, "callspec", None)
    outcome = Outcome()
    token = activate(outcome.cell)
    launcher: Launcher | None = None
    try:
        values: dict[str, Any] = {}
        with outcome.phase("setup"):
            process = state.processes[target.id]
            if "server" in names and _is_alone(item):
                process = _quiet_process(state, target)
            if "server" in names:
                _require_alive(process)
                outcome.cell.logs.append(("server log", process, process.log_offset()))
            for name in names:
                if name == "server":
                    values[name] = Server(target, process, state.timeouts)
                elif name == "target":
                    values[name] = target
                elif name == "launcher":
                    launcher = values[name] = _new_launcher(state, target, process.workdir)
                else:
                    assert callspec is not None
                    values[name] = callspec.params[name]
        if "setup" in outcome.errors:
            return outcome
        with outcome.phase("call"):
            function: Any = getattr(item, "obj")  # noqa: B009 (an Item has no declared obj)
            function(**values)
        with outcome.phase("teardown"):
            if launcher is not None:
                launcher.stop_all()  # (again in the finally, a no-op then, for a setup that failed)
            raised = outcome.errors.get("call")
            # Only a cell that did not pass asks whether the server is still there: beside
            # other cases, a server that a later request brings down must not turn a case
            # that had already passed into an error.
            if "server" in names and raised is not None and not isinstance(raised, pytest.skip.Exception):
                process.require_responsive(state.timeouts.request)
                _require_alive(process)
        return outcome
    finally:
        if launcher is not None:
            launcher.stop_all()
        deactivate(token)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A case that ran ahead: replay its call phase (the cell it filled, what it raised)."""
    outcome = pyfuncitem.stash.get(AHEAD_KEY, None)
    if outcome is None:
        return None
    raised = outcome.errors.get("call")
    if raised is not None:
        raise raised
    return True


# -- verdicts ----------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    token = None
    if ITEM_KEY in item.stash:
        cell = Cell()
        item.stash[CELL_KEY] = cell
        token = activate(cell)
        item.stash[TOKEN_KEY] = token
    result = yield
    state = item.config.stash.get(RUN_KEY, None)
    if state is not None and state.ahead is not None and state.ahead.planned(item):
        outcome = state.ahead.take(item, timeout=AHEAD_WAIT_S * state.timeouts.scale)
        item.stash[AHEAD_KEY] = outcome
        item.stash[CELL_KEY] = outcome.cell
        if "setup" in outcome.errors:
            raise outcome.errors["setup"]
    return result


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        result = yield
        outcome = item.stash.get(AHEAD_KEY, None)
        if outcome is not None and "teardown" in outcome.errors:
            raise outcome.errors["teardown"]
        return result
    finally:
        token = item.stash.get(TOKEN_KEY, None)
        if token is not None:
            deactivate(token)
            del item.stash[TOKEN_KEY]
        state = item.config.stash.get(RUN_KEY, None)
        if state is not None:
            _start_ahead(item, state)


def _verdict_for(level: Level | None, declared: Scenario) -> Verdict:
    """A broken rule's verdict: SHOULD -> warn; MUST (and MAY/info "if present" rules) -> fail."""
    effective = level or declared.level
    return Verdict.WARN if effective == Level.SHOULD else Verdict.FAIL


def _unwrap(exc: BaseException) -> BaseException:
    """Hypothesis may group several failures; judge by the first."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _rerun(state: RunState, target: Target, declared: Scenario) -> str:
    base = state.rerun_base.get(target.id, f"--target={target.id}")
    bind = f" --bind={state.bind}" if state.bind else ""
    framework = f" --framework={declared.framework}" if declared.framework else ""
    return f"pytest {base}{bind}{framework} --scenario={declared.id}"


def _failure_text(
    declared: Scenario, target: Target, verdict: Verdict, exc: BaseException, cell: Cell, rerun: str
) -> str:
    lines = [
        f"{verdict.value.upper()}: {declared.id} on {target.id} ({declared.level}, {declared.spec})",
        f"requirement: {declared.requirement_text}",
    ]
    if isinstance(exc, ScenarioFailed):
        lines.append(f"check:       {exc.message}")
        if not is_missing(exc.expected):
            lines.append(f"expected:    {render_value(exc.expected)}")
        if not is_missing(exc.observed):
            lines.append(f"observed:    {render_value(exc.observed)}")
    else:
        lines.append(f"check:       {type(exc).__name__}: {exc}")
    lines.extend(f"note:        {n}" for n in cell.notes)
    lines.append(f"re-run:      {rerun}")
    if cell.trace:
        lines.append("wire trace (last exchanges):")
        lines.extend(f"  {t}" for t in cell.trace[-12:])
    return "\n".join(lines)


@pytest.hookimpl(tryfirst=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_of_checks(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport | None:
    """A failed check's report without pytest's traceback: the wrapper below writes the cell's
    own text in its place, and pytest's parses every source file of the traceback again for each
    failure (half of a catalogue run's CPU time). Anything else gets pytest's report."""
    if call.when != "call" or call.excinfo is None or ITEM_KEY not in item.stash:
        return None
    exc = _unwrap(call.excinfo.value)
    if not isinstance(exc, ScenarioFailed | AssertionError):
        return None
    return pytest.TestReport(
        item.nodeid,
        item.location,
        dict.fromkeys(item.keywords, 1),
        "failed",
        f"{type(exc).__name__}: {exc}",
        "call",
        [(f"Captured {key} {when}", content) for when, key, content in item._report_sections],
        call.duration,
        call.start,
        call.stop,
        user_properties=item.user_properties,
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    pair = item.stash.get(ITEM_KEY, None)
    if pair is None:
        return report
    declared, target = pair
    state = item.config.stash[RUN_KEY]
    cell = item.stash.get(CELL_KEY, None) or Cell()
    rerun = _rerun(state, target, declared)
    verdict: Verdict | None = None
    message: str | None = None
    expected: Any = None
    exc = _unwrap(call.excinfo.value) if call.excinfo is not None else None

    if report.when == "setup":
        if report.skipped:
            verdict = Verdict.UNSUPPORTED
            message = _skip_reason(report)
        elif report.failed:
            verdict = Verdict.ERROR
            message = f"{type(exc).__name__}: {exc}" if exc is not None else "setup failed"
    elif report.when == "call":
        if exc is None:
            verdict = Verdict.INFO if declared.level == Level.INFO else Verdict.PASS
        elif isinstance(exc, Unsupported) or report.skipped:
            verdict = Verdict.UNSUPPORTED
            message = _skip_reason(report)
        elif isinstance(exc, ScenarioFailed | AssertionError):
            failed = exc if isinstance(exc, ScenarioFailed) else ScenarioFailed(str(exc) or "assertion failed")
            verdict = _verdict_for(failed.level, declared)
            message = failed.message
            expected = None if is_missing(failed.expected) else render_value(failed.expected)
            if is_missing(cell.observed) and not is_missing(failed.observed):
                cell.observed = failed.observed
            report.longrepr = _failure_text(declared, target, verdict, failed, cell, rerun)
            if verdict == Verdict.WARN:
                report.outcome = "passed"
                report.longrepr = None
        else:
            verdict = Verdict.ERROR
            message = f"{type(exc).__name__}: {exc}{_where(exc)}"
        if verdict is not None:
            item.stash[CALL_VERDICT_KEY] = verdict  # read by the `server` fixture's teardown
    elif report.when == "teardown" and report.failed:
        verdict = Verdict.ERROR
        message = f"{type(exc).__name__}: {exc}" if exc is not None else "teardown failed"

    logs = None
    if verdict is not None and verdict not in (Verdict.PASS, Verdict.INFO, Verdict.UNSUPPORTED):
        logs = _attach_logs(report, cell)
    known = None
    if verdict is not None and report.when in ("setup", "call"):
        known = _apply_baseline(state, target, declared, verdict, report)
    ahead = item.stash.get(AHEAD_KEY, None)
    if ahead is not None:
        # The phase ran in a thread: its time there, not pytest's wait for it.
        report.duration = ahead.durations.get(report.when, 0.0)
    payload: dict[str, Any] = {
        "phase": report.when,
        "verdict": verdict.value if verdict is not None else None,
        "target": {
            "id": target.id,
            "name": target.name,
            "version": target.version,
            "variant": target.variant,
            "source": target.source,
            "capabilities": sorted(target.all_capabilities),
            "bind": state.bind_for(target),
            "command": target.template or " ".join(target.command_template(state.bind_for(target))),
            "components": _components(target.modules),
        },
        "scenario": declared.to_json(),
        "duration_s": round(report.duration, 4),
        "rerun": rerun,
    }
    if known is not None:
        payload["baseline"] = known
    if message is not None:
        payload["message"] = message[:MAX_MESSAGE]
    if expected is not None:
        payload["expected"] = expected
    if not is_missing(cell.observed) and report.when == "call":
        payload["observed"] = render_value(cell.observed)
    if cell.notes and report.when == "call":
        payload["notes"] = list(cell.notes)
    if cell.trace and verdict not in (None, Verdict.PASS):
        payload["trace"] = cell.trace[-MAX_TRACE_LINES:]
    if logs:
        payload["log"] = logs[-MAX_MESSAGE:]
    report.user_properties.append((PROPERTY, payload))
    return report


@functools.cache
def _components(modules: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of the distributions providing the target's modules (h11, uvloop, ...)."""
    providers = importlib.metadata.packages_distributions()
    found: dict[str, str] = {}
    for module in modules:
        for dist in providers.get(module, []):
            try:
                found.setdefault(dist, importlib.metadata.version(dist))
            except importlib.metadata.PackageNotFoundError:
                continue
    return found


def _where(exc: BaseException) -> str:
    """Where an unexpected exception was raised (innermost frame), so an ``error`` cell says it."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    text = text.removeprefix("Skipped: ").removeprefix("Unsupported: ")
    return text if text.startswith("unsupported: ") else f"unsupported: {text}"


def _attach_logs(report: pytest.TestReport, cell: Cell) -> str:
    """Attach each server log this test touched (its slice) to the report; return them joined."""
    joined = []
    for label, process, offset in cell.logs:
        text = process.log_slice(offset, limit=8000) if isinstance(process, ServerProcess) else ""
        if text:
            report.sections.append((f"{label} ({process.target.id})", text))
            joined.append(f"--- {label}\n{text}")
    return "\n".join(joined)


@pytest.hookimpl
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    if report.when != "call":
        return None
    for name, payload in report.user_properties:
        if name == PROPERTY and isinstance(payload, dict):
            if payload.get("baseline") == "stale":
                return "failed", "F", ("STALE", {"red": True})
            if getattr(report, "wasxfail", None) is not None and report.skipped:
                return "xfailed", "x", ("XFAIL (baseline)", {"yellow": True})
            if payload.get("verdict") == Verdict.WARN:
                return "warned", "W", ("WARN", {"yellow": True})
            if payload.get("verdict") == Verdict.INFO:
                return "passed", "i", ("INFO", {"cyan": True})
            if payload.get("verdict") == Verdict.ERROR:
                # The harness could not judge (not a broken rule): show it as an error.
                return "error", "E", ("ERROR", {"red": True})
    return None


# -- end of run --------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(RUN_KEY, None)
    if state is None:
        return
    # Safety net: whatever fixture teardown missed (an interrupted run) is stopped here.
    if state.ahead is not None:
        state.ahead.close()
    for process in [*state.processes.values(), *state.quiet.values()]:
        if isinstance(process, ServerProcess):
            process.stop()
    for started in state.launchers:
        started.stop_all()
    described = {tid: p.describe() for tid, p in state.processes.items()}
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput[PROPERTY] = json.dumps(described)
    else:
        collector = session.config.pluginmanager.get_plugin("asgi-conformance-results")
        if isinstance(collector, ResultsCollector):
            collector.add_processes(described)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(RUN_KEY, None)
    if state is not None:
        for process in [*state.processes.values(), *state.quiet.values()]:
            if isinstance(process, ServerProcess):
                process.stop()
        for started in state.launchers:
            started.stop_all()

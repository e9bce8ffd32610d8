"""The ``asgi-conformance`` command.

``run``      run the catalogue: one pytest process per target, in parallel; then merge and render
``report``   render the HTML report from results JSON
``diff``     what changed between two results files (non-zero exit on regressions)
``merge``    join results JSON of separate runs into one
``targets``  list the known targets: installed or not, version, bind modes, capabilities
``list``     list the scenarios (filter by prefix, --area, --level); ``--coverage`` shows catalogue rows
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

__all__ = ["SUITES_PACKAGE", "load_suites", "main"]

SUITES_PACKAGE = "asgi_conformance_suites"


def load_suites(directory: Path | None = None) -> None:
    """Import every suite module so its scenarios register (without running pytest).

    The directory is imported as a package (as pytest does), so suites may share
    helpers through relative imports.
    """
    if directory is None:
        from .plugin import suites_dir

        directory = suites_dir()
    package = SUITES_PACKAGE
    if package not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            package, directory / "__init__.py", submodule_search_locations=[str(directory)]
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import the suites in {directory}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[package] = module
        spec.loader.exec_module(module)
    for path in sorted(directory.glob("test_*.py")):
        importlib.import_module(f"{package}.{path.stem}")


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")


def cmd_targets(args: argparse.Namespace, out: TextIO) -> int:
    from .targets import TargetError, known_targets

    try:
        known = known_targets()
    except TargetError as exc:
        print(f"asgi-conformance: {exc}", file=sys.stderr)
        return 2
    rows = [["target", "installed", "version", "variant", "bind (default first)", "capabilities", "extra"]]
    for t in known.values():
        missing = t.missing_modules()
        binds = [t.default_bind, *(m for m in t.bind_modes if m != t.default_bind)]
        rows.append(
            [
                t.id,
                "yes" if not missing else f"no ({', '.join(missing)})",
                t.version or "-",
                t.variant,
                ", ".join(binds),
                ", ".join(sorted(t.all_capabilities)),
                f"asgi-conformance[{t.extra}]" if t.extra else t.source,
            ]
        )
    _table(rows, out)
    return 0


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    from .requirements import all_requirements
    from .scenarios import all_scenarios

    load_suites()
    scenarios = sorted(all_scenarios().values(), key=lambda s: s.id)
    if args.prefix:
        scenarios = [s for s in scenarios if any(s.id == p or s.id.startswith(p + ".") for p in args.prefix)]
    if args.area:
        scenarios = [s for s in scenarios if s.area in args.area]
    if args.level:
        wanted_levels = {level.lower() for level in args.level}
        scenarios = [s for s in scenarios if str(s.level).lower() in wanted_levels]
    if args.framework:
        wanted_frameworks = {f.lower() for f in args.framework}
        scenarios = [s for s in scenarios if s.framework in wanted_frameworks]
    if not args.coverage:
        rows = [["scenario", "level", "area", "requires", "framework", "title"]]
        rows += [
            [s.id, str(s.level), s.area, ",".join(sorted(s.requires)) or "-", s.framework or "-", s.title]
            for s in scenarios
        ]
        if scenarios:
            _table(rows, out)
        out.write(f"{len(scenarios)} scenarios\n")
        return 0
    covered = {rid for s in scenarios for rid in s.covers}
    sections: dict[int, list[str]] = {}
    titles: dict[int, str] = {}
    for req in all_requirements().values():
        sections.setdefault(req.section, []).append(req.id)
        titles[req.section] = req.section_title
    wanted = set(args.section or [])
    for number in sorted(sections):
        if wanted and number not in wanted:
            continue
        ids = sections[number]
        done = [i for i in ids if i in covered]
        out.write(f"§{number} {titles[number]}: {len(done)}/{len(ids)} rows covered\n")
        if args.verbose:
            for rid in ids:
                out.write(f"  {'x' if rid in covered else ' '} {rid}\n")
    if not wanted:
        rows_all = all_requirements()
        must = [r for r in rows_all.values() if r.level.upper().startswith(("MUST", "SHOULD"))]
        out.write(
            f"total: {sum(1 for r in rows_all if r in covered)}/{len(rows_all)} rows covered; "
            f"MUST/SHOULD rows: {sum(1 for r in must if r.id in covered)}/{len(must)}\n"
        )
    return 0


# -- input files ---------------------------------------------------------------------------


class InputError(Exception):
    """A bad input file or argument: printed as one line, exit status 2."""


def _load_results(path: str) -> dict[str, Any]:
    from .results import ResultsError, load

    try:
        return load(path)
    except ResultsError as exc:
        raise InputError(str(exc)) from None


def _report_module() -> Any:
    """The HTML renderer, asgi_conformance.report (imported only when a report is made)."""
    try:
        return importlib.import_module(f"{__package__}.report")
    except ImportError as exc:
        raise InputError(f"the HTML renderer cannot be imported: {exc}") from None


def _write_html(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _report_module().write_html(results, path)


def _write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")


def _merged(paths: Sequence[str], prefer_last: bool = False) -> dict[str, Any]:
    from .merge import MergeError, merge

    files: list[str] = []
    for given in paths:
        if Path(given).is_dir():
            found = sorted(str(p) for p in Path(given).glob("*.json"))
            if not found:
                raise InputError(f"{given}: a directory with no *.json results in it")
            files += found
        else:
            files.append(given)
    loaded = [(p, _load_results(p)) for p in files]
    if len(loaded) == 1:
        return loaded[0][1]
    try:
        return merge(loaded, prefer_last=prefer_last)
    except MergeError as exc:
        raise InputError(str(exc)) from None


# -- report, diff, merge ---------------------------------------------------------------------


def cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    results = _merged(args.results)
    _write_html(results, Path(args.output))
    out.write(f"report: {args.output}\n")
    return 0


def cmd_diff(args: argparse.Namespace, out: TextIO) -> int:
    old, new = _load_results(args.old), _load_results(args.new)
    diff = importlib.import_module(f"{__package__}.diff")
    changes = diff.compute(old, new)
    out.write(diff.format_text(changes).rstrip("\n") + "\n")
    if args.html:
        path = Path(args.html)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_report_module().render_diff_html(old, new, changes))
        out.write(f"report: {path}\n")
    return 1 if diff.has_regressions(changes) else 0


def cmd_merge(args: argparse.Namespace, out: TextIO) -> int:
    merged = _merged(args.results, prefer_last=args.prefer_last)
    _write_json(merged, Path(args.output))
    sources = len(merged["run"].get("sources") or [None])
    out.write(f"merged {sources} runs: {len(merged['targets'])} targets, {len(merged['results'])} cells\n")
    out.write(f"results: {args.output}\n")
    return 0


# -- run -------------------------------------------------------------------------------------

RUN_HELP = """\
usage: asgi-conformance run [--target=NAME ...] [--jobs=N] [--json=PATH] [--html=PATH] [PYTEST ARGS ...]

Run the catalogue against each target in its own pytest process, at most N at a time,
printing one line per target as it finishes (verdict counts, seconds); then merge their
results JSON and render the HTML report.

options:
  --target=NAME   a target (repeatable; 'all' = every installed built-in); see `asgi-conformance targets`;
                  without it (or --target-cmd), the conformance_targets ini key names them
  --jobs=N, -j N  pytest processes at a time (default: the number of CPUs)
  --json=PATH     the merged results JSON (default: results.json beside the HTML report)
  --html=PATH     the HTML report (default: reports/index.html)
  --no-html       do not render the HTML report
  --framework=NAME  also run the framework scenarios (fw.NAME.*): starlette, fastapi, litestar,
                  quart, django or all; repeatable; passed to each pytest process

Every other argument goes to each pytest process unchanged (e.g. --scenario=http.scope,
--baseline=reports/baselines/granian.toml, -q, -x); with --target-cmd the run is one
pytest process. The exit status is pytest's: 0 when no cell failed (or every failure is
in a --baseline), 1 when one did; the highest status of all processes.
"""


@dataclass
class _Job:
    label: str
    args: list[str]
    json_path: Path
    log_path: Path | None
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    started: float = 0.0
    seconds: float = 0.0
    status: int = 0
    extra: list[str] = field(default_factory=list)


def _split_run_args(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Take run's own options out of argv; the rest goes to pytest."""
    own: dict[str, Any] = {"targets": [], "jobs": None, "json": None, "html": None, "no_html": False}
    rest: list[str] = []
    names = {
        "--target": "targets",
        "--jobs": "jobs",
        "-j": "jobs",
        "--json": "json",
        "--conformance-json": "json",
        "--html": "html",
        "--conformance-html": "html",
    }
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, value = (arg, None)
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
        if arg.startswith("-j") and arg != "-j" and arg[2:].isdigit():
            key, value = "-j", arg[2:]
        if arg == "--no-html":
            own["no_html"] = True
        elif key in names:
            if value is None:
                if i + 1 >= len(argv):
                    raise InputError(f"run: {key} needs a value")
                i += 1
                value = argv[i]
            if names[key] == "targets":
                own["targets"].append(value)
            else:
                own[names[key]] = value
        elif arg != "--":
            rest.append(arg)
        i += 1
    if own["jobs"] is not None:
        try:
            own["jobs"] = int(own["jobs"])
        except ValueError:
            raise InputError(f"run: --jobs must be a whole number, not {own['jobs']!r}") from None
        if own["jobs"] < 1:
            raise InputError("run: --jobs must be at least 1")
    return own, rest


def _counts_line(results: dict[str, Any], target: str) -> str:
    from .baseline import FAILING
    from .results import VERDICT_ORDER

    counts = dict.fromkeys(VERDICT_ORDER, 0)
    marked = {"known": 0, "flaky": 0, "stale": 0}
    for cell in results["results"]:
        if cell["target"] == target:
            counts[cell["verdict"]] = counts.get(cell["verdict"], 0) + 1
            if cell.get("baseline") in marked and (cell["baseline"] == "stale" or cell["verdict"] in FAILING):
                marked[cell["baseline"]] += 1
    line = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    if any(marked.values()):
        line += "; baseline: " + ", ".join(f"{n} {k}" for k, n in marked.items() if n)
    return line


def _check_frameworks(rest: list[str]) -> str | None:
    """The --framework values among pytest's arguments, checked before any process starts
    (they go on to each pytest process unchanged); the one-line problem, or None."""
    from .apps.frameworks import FrameworkError, resolve

    values = [a.split("=", 1)[1] for a in rest if a.startswith("--framework=")]
    values += [rest[i + 1] for i, a in enumerate(rest[:-1]) if a == "--framework"]
    if rest[-1:] == ["--framework"]:
        return "run: --framework needs a value"
    try:
        resolve(values)
    except FrameworkError as exc:
        return str(exc)
    return None


def _interrupt_on_sigterm() -> Any:
    """SIGTERM stops a run as Ctrl-C does (its pytest processes are stopped, not orphaned);
    the handler it replaced, or None where none can be set (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def cmd_run(argv: list[str], out: TextIO) -> int:
    from .targets import NEEDS_TARGET_ENV, TargetError, resolve

    own, rest = _split_run_args(argv)
    problem = _check_frameworks(rest)
    if problem is not None:
        print(f"asgi-conformance: {problem}", file=sys.stderr)
        return 4  # as pytest does for a usage error
    if any(a == "--target-cmd" or a.startswith("--target-cmd=") for a in rest):
        groups = [("run", [f"--target={t}" for t in own["targets"]])]  # one process for everything
    elif own["targets"]:
        try:
            chosen = resolve(own["targets"])
        except TargetError as exc:
            print(f"asgi-conformance: {exc}", file=sys.stderr)
            return 4  # as pytest does for a usage error
        groups = [(t.id, [f"--target={t.id}"]) for t in chosen]
    else:
        groups = [("run", [])]  # the conformance_targets ini option decides, or the run stops
    # No test paths: `pytest --target=X` runs the packaged catalogue, with the configuration
    # (rootdir, ini file) of the current directory, as a plain pytest run would.
    workdir = Path(tempfile.mkdtemp(prefix="asgi-conformance-run-"))
    single = len(groups) == 1
    jobs = [
        _Job(
            label,
            [
                sys.executable,
                "-m",
                "pytest",
                *targs,
                f"--conformance-json={workdir / label}.json",
                *rest,
            ],
            workdir / f"{label}.json",
            None if single else workdir / f"{label}.log",
            None if targs or any(a.startswith("--target-cmd") for a in rest) else {**os.environ, NEEDS_TARGET_ENV: "1"},
        )
        for label, targs in groups
    ]
    width = max(len(j.label) for j in jobs)
    limit = own["jobs"] or os.cpu_count() or 1
    waiting, running, done = list(jobs), list[_Job](), list[_Job]()
    began = time.monotonic()
    keep_workdir = False
    previous = _interrupt_on_sigterm()
    try:
        while waiting or running:
            while waiting and len(running) < limit:
                job = waiting.pop(0)
                if job.log_path is not None:
                    job.log = job.log_path.open("wb")
                job.started = time.monotonic()
                job.process = subprocess.Popen(
                    job.args,
                    stdin=subprocess.DEVNULL,
                    stdout=job.log if job.log is not None else None,
                    stderr=subprocess.STDOUT if job.log is not None else None,
                    env=job.env,
                )
                running.append(job)
            time.sleep(0.1)
            for job in list(running):
                assert job.process is not None
                status = job.process.poll()
                if status is None:
                    continue
                running.remove(job)
                done.append(job)
                job.status, job.seconds = status, time.monotonic() - job.started
                if job.log is not None:
                    job.log.close()
                keep_workdir |= _progress(job, len(done), len(jobs), width, out)
    except KeyboardInterrupt:
        # Each pytest process stops the servers it started on SIGTERM (the plugin's handler).
        for job in running:
            if job.process is not None:
                job.process.terminate()
                job.process.wait()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    status = max(j.status for j in jobs)
    produced = [str(j.json_path) for j in jobs if j.json_path.exists()]
    if produced:
        results = _merged(produced)
        if len(produced) > 1:
            results["run"]["duration_s"] = round(time.monotonic() - began, 3)  # parallel: the wall time
        html = None if own["no_html"] else Path(own["html"] or "reports/index.html")
        json_path = Path(own["json"]) if own["json"] else (html.parent if html else Path()) / "results.json"
        _write_json(results, json_path)
        out.write(f"results: {json_path}\n")
        if html is not None:
            try:
                _write_html(results, html)
                out.write(f"report: {html}\n")
            except InputError as exc:
                print(f"asgi-conformance: no HTML report: {exc}", file=sys.stderr)
                status = status or 2
    if keep_workdir:
        out.write(f"logs of the pytest processes: {workdir}\n")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return status


def _progress(job: _Job, n: int, total: int, width: int, out: TextIO) -> bool:
    """One line for a finished pytest process; True when its log should be kept."""
    prefix = f"[{n}/{total}] {job.label:<{width}}"
    if job.json_path.exists():
        try:
            results = _load_results(str(job.json_path))
        except InputError as exc:
            out.write(f"{prefix}  unreadable results ({exc}); pytest exit {job.status}, {job.seconds:.1f} s\n")
            return True
        for target in results["targets"]:
            version = target.get("version") or "-"
            counts = _counts_line(results, target["id"])
            out.write(f"{prefix}  {version:<10} {counts}  ({job.seconds:.1f} s, exit {job.status})\n")
            prefix = f"{'':>{len(prefix)}}"
        out.flush()
        return job.status not in (0, 1)
    out.write(f"{prefix}  no results: pytest exit {job.status} ({job.seconds:.1f} s)\n")
    if job.log_path is not None:
        tail = job.log_path.read_text(errors="replace").strip().splitlines()[-6:]
        out.writelines(f"    {line}\n" for line in tail)
    out.flush()
    return True


# -- main ------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="asgi-conformance", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"asgi-conformance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", help="run the catalogue per target in parallel, merge, render (run --help)", add_help=False)
    report = sub.add_parser(
        "report",
        help="render the HTML report from results JSON",
        description="Render the self-contained HTML report from results JSON (several files are merged first).",
    )
    report.add_argument("results", nargs="+", metavar="RESULTS.json", help="results files, or directories of them")
    report.add_argument("-o", "--output", default="index.html", metavar="PATH", help="default: index.html")
    diff = sub.add_parser(
        "diff",
        help="list the cells whose verdict or observed value changed",
        description="List the cells whose verdict or observed value changed from OLD to NEW, regressions first. "
        "Exit status 1 when there is a regression, 0 otherwise, 2 for a bad input file.",
    )
    diff.add_argument("old", metavar="OLD.json")
    diff.add_argument("new", metavar="NEW.json")
    diff.add_argument("--html", metavar="PATH", help="also write the diff as an HTML page")
    merge = sub.add_parser(
        "merge",
        help="join results JSON of separate runs into one",
        description="Join results JSON of separate runs (per target, CI job, machine) into one document. "
        "Refuses different schema versions and a cell (target x scenario) present in two inputs.",
    )
    merge.add_argument("results", nargs="+", metavar="RESULTS.json", help="results files, or directories of them")
    merge.add_argument("-o", "--output", required=True, metavar="OUT.json")
    merge.add_argument("--prefer-last", action="store_true", help="a duplicate cell: keep the later input's")
    sub.add_parser(
        "targets",
        help="list the known targets and whether they are installed",
        description="List the known targets: installed or not, version, variant, bind modes, capabilities.",
    )
    listing = sub.add_parser(
        "list", help="list the scenarios, or the catalogue coverage", description="List the scenarios (filterable)."
    )
    listing.add_argument("prefix", nargs="*", help="only scenario IDs under these prefixes")
    listing.add_argument("--area", action="append", help="only this area (e.g. http_scope); repeatable")
    listing.add_argument("--level", action="append", help="only this level (MUST, SHOULD, MAY, info); repeatable")
    listing.add_argument(
        "--framework", action="append", help="only the scenarios of this web framework (fw.*, chk.*); repeatable"
    )
    listing.add_argument("--coverage", action="store_true", help="covered catalogue rows per section")
    listing.add_argument("--section", type=int, action="append", help="with --coverage: only this section")
    listing.add_argument("-v", "--verbose", action="store_true", help="with --coverage: every row, x = covered")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["run"]:
            if {"-h", "--help"} & set(argv[1:2]):
                sys.stdout.write(RUN_HELP)
                return 0
            # Everything after `run` that is not run's own goes to pytest.
            return cmd_run(argv[1:], sys.stdout)
        args = _parser().parse_args(argv)
        command = {
            "targets": cmd_targets,
            "list": cmd_list,
            "report": cmd_report,
            "diff": cmd_diff,
            "merge": cmd_merge,
        }[args.command]
        return command(args, sys.stdout)
    except InputError as exc:
        print(f"asgi-conformance: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `asgi-conformance list | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: the pytest processes have been stopped (see cmd_run).
        print("asgi-conformance: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

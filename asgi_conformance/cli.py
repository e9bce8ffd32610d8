"""The ``asgi-conformance`` command.

``run``      run the catalogue (all arguments after ``run`` go to pytest)
``targets``  list the known targets: installed or not, version, bind modes, capabilities
``list``     list the scenarios; ``--coverage`` shows which catalogue rows they cover
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

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
    if not args.coverage:
        rows = [["scenario", "level", "requires", "title"]]
        rows += [[s.id, str(s.level), ",".join(sorted(s.requires)) or "-", s.title] for s in scenarios]
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
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="asgi-conformance", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"asgi-conformance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run the catalogue; every further argument goes to pytest",
        description="Run the conformance catalogue through pytest, e.g. "
        "`asgi-conformance run --target=uvicorn --conformance-json=out.json`. "
        "See `pytest --help` (section asgi-conformance) for the options.",
    )
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="arguments for pytest")
    sub.add_parser("targets", help="list the known targets and whether they are installed")
    listing = sub.add_parser("list", help="list the scenarios, or the catalogue coverage")
    listing.add_argument("prefix", nargs="*", help="only scenario IDs under these prefixes")
    listing.add_argument("--coverage", action="store_true", help="covered catalogue rows per section")
    listing.add_argument("--section", type=int, action="append", help="with --coverage: only this section")
    listing.add_argument("-v", "--verbose", action="store_true", help="with --coverage: every row, x = covered")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"] and not {"-h", "--help"} & set(argv[1:2]):
        # Everything after `run` is pytest's (argparse would take `--target=x` as its own).
        import pytest

        from .plugin import suites_dir

        return int(pytest.main([str(suites_dir()), *(a for a in argv[1:] if a != "--")]))
    args = parser.parse_args(argv)
    if args.command == "targets":
        return cmd_targets(args, sys.stdout)
    return cmd_list(args, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())

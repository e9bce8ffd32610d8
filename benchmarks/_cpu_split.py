"""A pytest plugin for the benchmark: where one run's CPU time went.

``benchmarks/run.py`` loads it into the pytest process it times (``-p _cpu_split
--bench-cpu-file=PATH``). At the end of the run it writes the CPU time of the pytest process
itself (the harness: plugin, clients, judging, reports), the CPU time of the processes it
started and reaped (the servers), and how many server processes were started, by app. The
benchmark can then say whether a slow target is slow in the harness or in its servers, and
how much of the servers' time is starting them.
"""

from __future__ import annotations

import collections
import json
import resource
from pathlib import Path
from typing import Any

import pytest

from asgi_conformance import process

_STARTS: collections.Counter[str] = collections.Counter()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench-cpu-file", help="benchmark: write this run's CPU split here (JSON)")


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("--bench-cpu-file"):
        return
    start = process.ServerProcess.start

    def counted(self: process.ServerProcess, *args: Any, **kwargs: Any) -> Any:
        _STARTS[self.app.rpartition(":")[2]] += 1
        return start(self, *args, **kwargs)

    process.ServerProcess.start = counted  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.getoption("--bench-cpu-file")
    if not path:
        return
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    split = {
        "harness_cpu_s": own.ru_utime + own.ru_stime,
        "servers_cpu_s": children.ru_utime + children.ru_stime,
        "server_starts": dict(_STARTS),
    }
    Path(path).write_text(json.dumps(split))

"""The ``asgi-conformance`` command: run the catalogue, list targets and scenarios."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asgi-conformance", description=__doc__)
    parser.add_argument("command", choices=["run"])
    _, rest = parser.parse_known_args(argv)
    import pytest

    from .plugin import suites_dir

    return int(pytest.main([str(suites_dir()), *rest]))


if __name__ == "__main__":
    sys.exit(main())

"""The public API is what __all__ says, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import asgi_conformance


def test_all_names_resolve() -> None:
    for name in asgi_conformance.__all__:
        assert getattr(asgi_conformance, name) is not None, name
    assert len(set(asgi_conformance.__all__)) == len(asgi_conformance.__all__)


def test_server_side_import_does_not_load_pytest() -> None:
    """Servers import the scenario apps; they must not drag pytest or the clients in."""
    code = (
        "import sys, asgi_conformance.apps.serve; "
        "bad = [m for m in ('pytest', 'hypothesis', 'h11', 'httpx', 'jinja2') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr

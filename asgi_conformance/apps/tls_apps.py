"""Scenario apps for the TLS scenarios: none of their own.

Every TLS case (suites/test_tls.py) reads the scope through the catalogue's echo (``/echo``
for HTTP, any WebSocket path outside ``/app/``), which returns ``scope["extensions"]`` with
the ``tls`` dict as the server gave it. This module stays so routes.MODULES can list it.
"""

from __future__ import annotations

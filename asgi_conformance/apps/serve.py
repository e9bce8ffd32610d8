"""The module every target serves: ``asgi_conformance.apps.serve:<attribute>``.

``app`` is the catalogue with the normal lifespan handler; it is what the shared
server per target runs. The other attributes differ only in their lifespan handler
(``stop_probe`` also holds requests on ``/hold/<token>``) and are served by dedicated
processes that lifespan scenarios start; ``fw_<framework>`` serve a web framework's app
at the top level (framework scenarios). When ``ASGI_CONFORMANCE_MUTANT`` names a
mutant (see mutants), every attribute is wrapped in it: that is how the harness's own
tests prove a scenario can fail.
"""

from __future__ import annotations

from . import legacy as _legacy
from .catalogue import Catalogue
from .frameworks import TopLevel as _FrameworkTop
from .lifespan import HeldRequests
from .mutants import wrap_from_environment

__all__ = [
    "app",
    "fw_django",
    "fw_fastapi",
    "fw_litestar",
    "fw_quart",
    "fw_starlette",
    "gated_shutdown",
    "gated_startup",
    "invalid_send",
    "legacy",
    "out_of_order",
    "raise_after_startup",
    "raise_on_scope",
    "returns_early",
    "shutdown_failed",
    "startup_failed",
    "startup_failed_no_message",
    "stop_probe",
]

app = wrap_from_environment(Catalogue("normal"))
startup_failed = wrap_from_environment(Catalogue("startup_failed"))
startup_failed_no_message = wrap_from_environment(Catalogue("startup_failed_no_message"))
raise_on_scope = wrap_from_environment(Catalogue("raise_on_scope"))
raise_after_startup = wrap_from_environment(Catalogue("raise_after_startup"))
gated_startup = wrap_from_environment(Catalogue("gated_startup"))
gated_shutdown = wrap_from_environment(Catalogue("gated_shutdown"))
shutdown_failed = wrap_from_environment(Catalogue("shutdown_failed"))
returns_early = wrap_from_environment(Catalogue("returns_early"))
invalid_send = wrap_from_environment(Catalogue("invalid_send"))
out_of_order = wrap_from_environment(Catalogue("out_of_order"))
stop_probe = wrap_from_environment(HeldRequests(Catalogue("gated_shutdown")))
fw_starlette = wrap_from_environment(_FrameworkTop("starlette"))
fw_fastapi = wrap_from_environment(_FrameworkTop("fastapi"))
fw_litestar = wrap_from_environment(_FrameworkTop("litestar"))
fw_quart = wrap_from_environment(_FrameworkTop("quart"))
fw_django = wrap_from_environment(_FrameworkTop("django"))
"""A framework's app at the top of a dedicated process, with the framework's own lifespan
(suites/test_framework.py: lifespan_state, root_path). The framework is imported at the first
call, inside the server; asgi_conformance.apps.frameworks.TopLevel answers the readiness probe."""
legacy = _legacy.served()
"""A class-style ASGI 2 app (core.app.legacy_asgi2). Not wrapped like the others: a mutant
middleware would make it an ASGI 3 callable; only mutants that target it apply (legacy.served)."""

"""Target adapters: how to launch each ASGI server on an app, and what it supports.

A ``Target`` is data: the command template that serves an app ``module:attr``, the
bind modes it accepts (a pre-bound socket ``fd``, ``port`` chosen by the harness, or
a Unix socket ``uds``), the capabilities it declares, the signal that starts its
graceful shutdown, and the distribution whose installed version the results report.

Sources of targets, in order: the built-ins below, the entry-point group
``asgi_conformance.targets`` (third-party adapters: an entry point may name a
``Target``, an iterable of them, or a callable returning either), and
``--target-cmd`` for any other server.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import shlex
import signal
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

__all__ = [
    "BUILTIN_TARGETS",
    "CAPABILITIES",
    "NEEDS_TARGET_ENV",
    "BindMode",
    "Target",
    "TargetError",
    "from_command",
    "known_targets",
    "resolve",
]

NEEDS_TARGET_ENV = "ASGI_CONFORMANCE_NEEDS_TARGET"
"""Set by `asgi-conformance run` when given no --target: a pytest process that then resolves
no target stops with a usage error, rather than run whatever tests its directory holds."""

BindMode = Literal["fd", "port", "uds"]
BIND_MODES: tuple[BindMode, ...] = ("fd", "port", "uds")
ENTRY_POINT_GROUP = "asgi_conformance.targets"

CAPABILITIES = {
    "lifespan": "sends lifespan events",
    "websocket": "serves WebSocket connections",
    "http2": "speaks HTTP/2",
    "h2c": "speaks cleartext HTTP/2 with prior knowledge on its plain listener (declare http2 too)",
    "tls": "serves TLS (adapters declare it once they can launch with a certificate)",
    "root_path": "can be configured with a root path",
    "uds": "binds a Unix socket",
    "fd": "serves a pre-bound socket",
}


class TargetError(Exception):
    """A target that cannot be used as asked; the message is one line for the user."""


@dataclass(frozen=True)
class Target:
    """How to run one ASGI server configuration, and what it declares."""

    id: str
    name: str
    argv: tuple[str, ...]
    bind_args: Mapping[BindMode, tuple[str, ...]]
    default_bind: BindMode
    capabilities: frozenset[str]
    variant: str = ""
    distribution: str | None = None
    modules: tuple[str, ...] = ()
    extra: str | None = None
    root_path_args: tuple[str, ...] = ()
    ws_ping_args: tuple[str, ...] = ()
    """Appended to the command to set a WebSocket ping interval: ``{seconds}`` (e.g. "0.5") or
    ``{whole_seconds}`` (rounded up, at least 1, for options that take an integer)."""
    tls_args: tuple[str, ...] = ()
    """Appended to the command to serve TLS: ``{certfile}`` (the server's certificate chain,
    leaf first), ``{keyfile}`` (its PKCS#8 key), ``{ca_certs}`` (the CA that client
    certificates must chain to; adapters ask for an optional client certificate where the
    server can). See asgi_conformance.tls."""
    tls_bind_args: Mapping[BindMode, tuple[str, ...]] = field(default_factory=dict)
    """For servers whose TLS listener replaces the bind options (daphne's twisted ``ssl:``
    endpoint): the bind args used instead of ``bind_args`` when launched with TLS."""
    stop_signal: signal.Signals = signal.SIGTERM
    env: Mapping[str, str] = field(default_factory=dict)
    source: str = "builtin"
    template: str | None = None

    @property
    def bind_modes(self) -> tuple[BindMode, ...]:
        return tuple(m for m in BIND_MODES if m in self.bind_args)

    @property
    def all_capabilities(self) -> frozenset[str]:
        """Declared capabilities plus those implied by the bind modes."""
        implied = {m for m in ("uds", "fd") if m in self.bind_args}
        if self.root_path_args:
            implied.add("root_path")
        return self.capabilities | implied

    def missing_modules(self) -> list[str]:
        return [m for m in self.modules if importlib.util.find_spec(m) is None]

    @property
    def installed(self) -> bool:
        return not self.missing_modules()

    @property
    def version(self) -> str | None:
        return None if self.distribution is None else _installed_version(self.distribution)

    @property
    def tls_bind_modes(self) -> tuple[BindMode, ...]:
        """The bind modes a TLS launch can use (none if the target cannot serve TLS)."""
        if not self.tls_args and not self.tls_bind_args:
            return ()
        if self.tls_bind_args:
            return tuple(m for m in BIND_MODES if m in self.tls_bind_args)
        return self.bind_modes

    def command_template(self, bind: BindMode, *, root_path: bool = False, tls: bool = False) -> list[str]:
        """The argv with placeholders left in: stable across runs, for the results."""
        if bind not in self.bind_args:
            raise TargetError(f"target {self.id!r} cannot bind by {bind} (it supports {', '.join(self.bind_modes)})")
        if tls and bind not in self.tls_bind_modes:
            how = f"by {', '.join(self.tls_bind_modes)}" if self.tls_bind_modes else "with no TLS options"
            raise TargetError(f"target {self.id!r} cannot serve TLS bound by {bind} (it serves TLS {how})")
        bind_args = self.tls_bind_args if tls and self.tls_bind_args else self.bind_args
        argv: list[str] = []
        for part in self.argv:
            if part == "{bind}":
                argv.extend(bind_args[bind])
            elif part == "{root_path}":
                argv.extend(self.root_path_args if root_path else ())
            else:
                argv.append(part)
        if tls:
            argv.extend(self.tls_args)
        return argv

    def command(
        self,
        app: str,
        bind: BindMode,
        values: Mapping[str, str],
        root_path: str | None = None,
        *,
        tls: Mapping[str, str] | None = None,
    ) -> list[str]:
        """The argv that serves ``app`` bound as ``bind``; ``values`` fill host/port/uds/fd.

        ``tls`` (the placeholders of ``tls.Authority.values()``) serves TLS with ``tls_args``.
        """
        filled = {"python": sys.executable, "app": app, **values, **(tls or {})}
        if root_path is not None:
            filled["root_path"] = root_path
        template = self.command_template(bind, root_path=root_path is not None, tls=tls is not None)
        return [fill(part, filled) for part in template]

    def with_env(self, suffix: str, env: Mapping[str, str]) -> Target:
        return replace(self, id=f"{self.id}{suffix}", env={**self.env, **env})


def fill(part: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` placeholders that have a value; leave any other text alone."""
    for key, value in values.items():
        part = part.replace("{" + key + "}", value)
    return part


_UVICORN_BIND: dict[BindMode, tuple[str, ...]] = {
    "port": ("--host", "{host}", "--port", "{port}"),
    "uds": ("--uds", "{uds}"),
    "fd": ("--fd", "{fd}"),
}
_UVICORN_CAPS = frozenset({"lifespan", "websocket", "tls"})
_UVICORN_TLS = (
    "--ssl-certfile",
    "{certfile}",
    "--ssl-keyfile",
    "{keyfile}",
    "--ssl-ca-certs",
    "{ca_certs}",
    "--ssl-cert-reqs",
    "1",
)


def _uvicorn(target_id: str, http: str, ws: str) -> Target:
    return Target(
        id=target_id,
        name="uvicorn",
        variant=f"{http} + {ws}, uvloop",
        distribution="uvicorn",
        argv=(
            "{python}",
            "-m",
            "uvicorn",
            "{app}",
            "--http",
            http,
            "--ws",
            ws,
            "--loop",
            "uvloop",
            "{bind}",
            "{root_path}",
        ),
        # --fd leaves Nagle on in uvicorn (+44 ms per small keep-alive request): port by default.
        bind_args=_UVICORN_BIND,
        default_bind="port",
        capabilities=_UVICORN_CAPS,
        modules=("uvicorn", http, "uvloop", ws),
        extra="uvicorn",
        root_path_args=("--root-path", "{root_path}"),
        ws_ping_args=("--ws-ping-interval", "{seconds}"),
        # --ssl-cert-reqs 1 = ssl.CERT_OPTIONAL: a client certificate is asked for, not required.
        tls_args=_UVICORN_TLS,
    )


def _hypercorn(target_id: str, worker: str) -> Target:
    return Target(
        id=target_id,
        name="hypercorn",
        variant=f"{worker} worker",
        distribution="hypercorn",
        argv=("{python}", "-m", "hypercorn", "-k", worker, "{bind}", "{root_path}", "{app}"),
        bind_args={"fd": ("--bind", "fd://{fd}"), "port": ("--bind", "{host}:{port}"), "uds": ("--bind", "unix:{uds}")},
        default_bind="fd",
        capabilities=frozenset({"lifespan", "websocket", "http2", "h2c", "tls"}),
        modules=("hypercorn", worker),
        extra="hypercorn",
        root_path_args=("--root-path", "{root_path}"),
        ws_ping_args=("--websocket-ping-interval", "{whole_seconds}"),
        # Offers h2 and http/1.1 by ALPN with a certificate (hypercorn's default alpn_protocols).
        tls_args=(
            "--certfile",
            "{certfile}",
            "--keyfile",
            "{keyfile}",
            "--ca-certs",
            "{ca_certs}",
            "--verify-mode",
            "CERT_OPTIONAL",
        ),
    )


BUILTIN_TARGETS: dict[str, Target] = {
    t.id: t
    for t in (
        _uvicorn("uvicorn", "httptools", "websockets"),
        _uvicorn("uvicorn-h11", "h11", "websockets"),
        _uvicorn("uvicorn-wsproto", "httptools", "wsproto"),
        _hypercorn("hypercorn", "asyncio"),
        _hypercorn("hypercorn-trio", "trio"),
        Target(
            id="daphne",
            name="daphne",
            variant="twisted",
            distribution="daphne",
            argv=("{python}", "-m", "daphne", "{bind}", "{root_path}", "{app}"),
            bind_args={"fd": ("--fd", "{fd}"), "port": ("-b", "{host}", "-p", "{port}"), "uds": ("-u", "{uds}")},
            default_bind="fd",
            capabilities=frozenset({"websocket", "http2", "tls"}),
            modules=("daphne",),
            extra="daphne",
            root_path_args=("--root-path", "{root_path}"),
            ws_ping_args=("--ping-interval", "{whole_seconds}"),
            # TLS through a twisted ``ssl:`` endpoint, which replaces the bind options (port only;
            # the endpoint has no option to ask for a client certificate).
            tls_bind_args={
                "port": ("-e", "ssl:{port}:interface={host}:privateKey={keyfile_endpoint}:certKey={certfile_endpoint}")
            },
        ),
        Target(
            id="granian",
            name="granian",
            variant="asgi interface",
            distribution="granian",
            argv=("{python}", "-m", "granian", "--interface", "asgi", "{bind}", "{root_path}", "{app}"),
            bind_args={"port": ("--host", "{host}", "--port", "{port}"), "uds": ("--uds", "{uds}")},
            default_bind="port",
            capabilities=frozenset({"lifespan", "websocket", "http2", "h2c", "tls"}),
            modules=("granian",),
            extra="granian",
            root_path_args=("--url-path-prefix", "{root_path}"),
            # Granian's minimum is TLS 1.3 unless told otherwise; `--http auto` (its default)
            # offers h2 and http/1.1 by ALPN.
            tls_args=(
                "--ssl-certificate",
                "{certfile}",
                "--ssl-keyfile",
                "{keyfile}",
                "--ssl-protocol-min",
                "tls1.2",
                "--ssl-ca",
                "{ca_certs}",
            ),
        ),
        Target(
            id="gunicorn-uvicorn",
            name="gunicorn",
            variant="uvicorn_worker.UvicornWorker",
            distribution="gunicorn",
            argv=(
                "{python}",
                "-m",
                "gunicorn",
                "-k",
                "uvicorn_worker.UvicornWorker",
                "--workers",
                "1",
                "{bind}",
                "{app}",
            ),
            bind_args={"port": ("-b", "{host}:{port}"), "uds": ("-b", "unix:{uds}"), "fd": ("-b", "fd://{fd}")},
            default_bind="port",
            capabilities=frozenset({"lifespan", "websocket", "tls"}),
            modules=("gunicorn", "uvicorn_worker", "uvicorn"),
            extra="gunicorn",
            # The worker hands gunicorn's ssl settings to uvicorn; --cert-reqs 1 = ssl.CERT_OPTIONAL.
            tls_args=(
                "--certfile",
                "{certfile}",
                "--keyfile",
                "{keyfile}",
                "--ca-certs",
                "{ca_certs}",
                "--cert-reqs",
                "1",
            ),
        ),
    )
}


def _entry_point_targets() -> dict[str, Target]:
    found: dict[str, Target] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
            if callable(loaded) and not isinstance(loaded, Target):
                loaded = loaded()
            items = [loaded] if isinstance(loaded, Target) else list(loaded)
        except Exception as exc:
            raise TargetError(f"target entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        for item in items:
            if not isinstance(item, Target):
                raise TargetError(f"target entry point {ep.name!r} gave {type(item).__name__}, not a Target")
            found[item.id] = replace(item, source=f"entry point {ep.value}")
    return found


def known_targets() -> dict[str, Target]:
    """Built-in targets plus those third-party packages register."""
    return {**BUILTIN_TARGETS, **_entry_point_targets()}


def _not_installed(target: Target) -> str:
    missing = ", ".join(target.missing_modules())
    hint = f"pip install 'asgi-conformance[{target.extra}]'" if target.extra else "install the server"
    return f"target {target.id!r} is not installed (missing: {missing}); {hint}"


def resolve(names: Iterable[str]) -> list[Target]:
    """Turn ``--target`` values into targets, or raise TargetError with one line to show."""
    known = known_targets()
    chosen: dict[str, Target] = {}
    for raw in names:
        for name in (n.strip() for n in raw.split(",")):
            if not name:
                continue
            if name == "all":
                installed = [t for t in known.values() if t.source == "builtin" and t.installed]
                if not installed:
                    raise TargetError(
                        "--target=all: no built-in target is installed; pip install 'asgi-conformance[all]'"
                    )
                chosen.update((t.id, t) for t in installed)
                continue
            target = known.get(name)
            if target is None:
                choices = ", ".join(sorted(known))
                raise TargetError(f"unknown target {name!r}; choose from: {choices}, all (or use --target-cmd)")
            if not target.installed:
                raise TargetError(_not_installed(target))
            chosen[target.id] = target
    return list(chosen.values())


def from_command(template: str, name: str | None, capabilities: str | None) -> Target:
    """A target for any server, from ``--target-cmd='CMD {app} {host} {port}'``.

    The placeholders decide the bind mode: ``{fd}`` (a pre-bound socket), ``{uds}``
    (a Unix socket) or ``{port}`` (with ``{host}``); ``{python}`` is this interpreter.
    """
    try:
        argv = tuple(shlex.split(template))
    except ValueError as exc:
        raise TargetError(f"--target-cmd: cannot parse {template!r}: {exc}") from exc
    if not argv:
        raise TargetError("--target-cmd is empty")
    if not any("{app}" in part for part in argv):
        raise TargetError("--target-cmd must contain {app} (the module:attribute to serve)")
    modes = [m for m in ("fd", "uds", "port") if any("{" + m + "}" in part for part in argv)]
    if len(modes) != 1:
        raise TargetError("--target-cmd must contain exactly one of {port}, {uds} or {fd} to say how it binds")
    caps = (
        {"lifespan", "websocket"} if capabilities is None else {c.strip() for c in capabilities.split(",") if c.strip()}
    )
    unknown = caps - set(CAPABILITIES)
    if unknown:
        raise TargetError(f"--target-capabilities: unknown {sorted(unknown)}; known: {', '.join(sorted(CAPABILITIES))}")
    mode: BindMode = modes[0]  # type: ignore[assignment]
    target_id = name or "custom"
    if target_id in BUILTIN_TARGETS:
        raise TargetError(f"--target-name={target_id!r} is a built-in target's name; choose another")
    return Target(
        id=target_id,
        name=target_id,
        variant="--target-cmd",
        argv=argv,
        bind_args={mode: ()},
        default_bind=mode,
        capabilities=frozenset(caps - {"uds", "fd"}),
        source="--target-cmd",
        template=template,
    )


@functools.cache
def _installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, read once per process: every report of a run
    carries it, and reading package metadata was a tenth of a run's CPU time."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None

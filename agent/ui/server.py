"""Serving the live page with uvicorn: loopback by default; any other address only with a token.

``serve`` blocks (``labpilot serve-ui``); ``start_in_thread`` runs the same server beside a campaign
(``labpilot run --ui``) or a test, and returns a handle that stops it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from agent.store import Store
from agent.ui.app import create_app

DEFAULT_BIND = "127.0.0.1:8765"
TOKEN_ENV = "LABPILOT_UI_TOKEN"


class UIConfigError(ValueError):
    """A bind address or token the page cannot be served with (nothing was started)."""


def parse_bind(bind: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port); ``UIConfigError`` naming the problem."""
    host, sep, port = bind.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UIConfigError(f"--bind {bind!r}: expected HOST:PORT, e.g. {DEFAULT_BIND}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def access_token(host: str, token: str | None) -> str | None:
    """The token the page requires: the one given (or ``$LABPILOT_UI_TOKEN``); off loopback one is
    required, else ``UIConfigError``."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise UIConfigError(f"binding {host} (not loopback) needs an access token: --token TOKEN or ${TOKEN_ENV}; "
                            "without one, bind 127.0.0.1")
    if token is not None and len(token) < 16:
        raise UIConfigError("the access token is too short: use at least 16 characters (e.g. `openssl rand -hex 16`)")
    return token


def _config(store: Store, bind: str, token: str | None) -> uvicorn.Config:
    host, port = parse_bind(bind)
    app = create_app(store, token=access_token(host, token))
    return uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2, lifespan="off")


def serve(store: Store, bind: str = DEFAULT_BIND, token: str | None = None) -> None:
    """Serve the page until interrupted (Ctrl-C)."""
    config = _config(store, bind, token)
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        config.app.state.stopping.set()


@dataclass
class RunningUI:
    """A page served from a background thread."""

    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self, timeout: float = 10.0) -> None:
        self.server.config.app.state.stopping.set()  # event streams end, so connections close
        self.server.should_exit = True
        self.thread.join(timeout)


def start_in_thread(store: Store, bind: str = DEFAULT_BIND, token: str | None = None, *, timeout: float = 20.0) -> RunningUI:
    """Start the page in a daemon thread and wait until it accepts connections."""
    config = _config(store, bind, token)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="labpilot-ui", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise UIConfigError(f"the page could not be served on {bind} (address in use?)")
        time.sleep(0.05)
    host, port = parse_bind(bind)
    if port == 0:  # an ephemeral port: ask the socket which
        port = server.servers[0].sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return RunningUI(server, thread, f"http://{shown}:{port}/")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now (for tests and ``--bind HOST:0``-like use)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])

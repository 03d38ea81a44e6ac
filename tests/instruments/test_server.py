"""What the instrument server tells its operator, and errors and keys at the trust boundary."""

from __future__ import annotations

import logging
import pickle
import stat
import time
from pathlib import Path

import pytest
import ray
import zmq
import zmq.auth

from agent.errors import first_line
from instruments.remote import RemoteInstrumentError, load_secret_certificate
from tests.instruments.test_remote import _synthetic, serving

pytestmark = pytest.mark.timeout(60)


def _keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(server secret file, clients folder with one authorised client, that client's secret file)."""
    keys, clients = tmp_path / "keys", tmp_path / "clients"
    keys.mkdir(mode=0o700)
    clients.mkdir()
    _, server_secret = zmq.auth.create_certificates(keys, "server")
    client_public, client_secret = zmq.auth.create_certificates(keys, "client")
    Path(client_public).rename(clients / "client.key")
    for secret in (server_secret, client_secret):
        Path(secret).chmod(0o600)  # as `labpilot keys` writes them
    return Path(server_secret), clients, Path(client_secret)


def _knock(address: str, server_key: bytes | None, seconds: float = 1.5) -> None:
    """A client that keeps knocking for ``seconds`` (libzmq reconnects every 100 ms)."""
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.linger = 0
    if server_key is not None:
        public, secret = zmq.curve_keypair()
        socket.curve_publickey, socket.curve_secretkey, socket.curve_serverkey = public, secret, server_key
    socket.connect(address)
    socket.send(b"hello")
    time.sleep(seconds)
    context.destroy(linger=0)


def test_a_client_without_keys_or_with_the_wrong_server_key_is_logged_once(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    server_secret, clients, _ = _keys(tmp_path)
    caplog.set_level(logging.WARNING, logger="instruments.server")
    with serving(_synthetic(tmp_path), server_secret_key_file=server_secret, authorized_clients_dir=clients) as server:
        _knock(server.address, None)
        wrong, _ = zmq.curve_keypair()
        _knock(server.address, wrong)
        time.sleep(0.3)
    refused = [r.getMessage() for r in caplog.records if "refused a connection" in r.getMessage()]
    # A keyless client is reported as a mechanism mismatch or, depending on timing, as a broken-off
    # handshake: each kind once, however many times the client retried.
    assert any("without CURVE keys" in m for m in refused), refused
    assert sum("wrong server key" in m for m in refused) == 1, refused
    assert len(refused) == len(set(refused)), refused


def test_a_remote_error_keeps_its_reason_across_ray(ray_local: None) -> None:
    error = RemoteInstrumentError("InterlockOpen", "the hutch door is open")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)

    @ray.remote
    def fails() -> None:
        raise error

    with pytest.raises(Exception) as info:
        ray.get(fails.remote())
    assert first_line(info.value) == "InterlockOpen: the hutch door is open"


def test_a_secret_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    server_secret, _, _ = _keys(tmp_path)
    load_secret_certificate(server_secret, "server key")  # 0600 as zmq wrote it
    server_secret.chmod(0o644)
    with pytest.raises(ValueError, match=r"server key: .* is readable by others \(mode 644\).*chmod 600"):
        load_secret_certificate(server_secret, "server key")


def test_labpilot_keys_makes_a_private_folder(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agent.cli import app

    folder = tmp_path / "new" / "keys"
    assert CliRunner().invoke(app, ["keys", "saxs", "--dir", str(folder)]).exit_code == 0
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "saxs.key_secret").stat().st_mode) & 0o077 == 0


def test_serve_instrument_finds_installed_modules_before_the_working_folder(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.cli import _driver_class

    (tmp_path / "json.py").write_text("raise RuntimeError('a stray file shadowed the standard library')\n")
    (tmp_path / "mydriver.py").write_text("class Driver:\n    pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    assert _driver_class("mydriver:Driver").__name__ == "Driver"  # the working folder is still searched
    import sys

    assert sys.path[-1] == str(tmp_path) and _driver_class("json:dumps").__module__ == "json"

"""The ZMQ instrument server and its client: a real driver served by a real `labpilot serve-instrument`
process (or an in-process server thread), used through ``RemoteDriver`` over real sockets.

Subprocess tests are marked slow. Every server, socket and process started here is shut down.
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from instruments.protocol import InstrumentLimitError, InstrumentUnreachable
from instruments.remote import (
    RemoteDriver,
    RemoteInstrumentError,
    RemoteProtocolError,
    RemoteSettings,
    SerializerUnavailable,
    detect_serializer,
    get_codec,
    is_loopback,
)
from instruments.sas import SASConfigurationModel, SASInstrumentModel
from instruments.server import InstrumentServer
from instruments.types import DataKey, Measurement, MeasurementRequest, Timing
from instruments.xrd import XRDInstrumentModel
from simulators.journal import MeasurementJournal
from simulators.synthetic import SyntheticPropertyDriver, SyntheticSettings

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
INPUTS = {"temperature": (300.0, 500.0), "time": (1.0, 60.0)}
PARAMS = {"temperature": 420.0, "time": 12.0}
DRIVER = "simulators.synthetic:SyntheticPropertyDriver"


def _request(attempt_id: str, **params: float) -> MeasurementRequest:
    return MeasurementRequest(attempt_id=attempt_id, params=params or PARAMS)


# -- a `labpilot serve-instrument` subprocess -------------------------------------------------------


class Served:
    """``labpilot serve-instrument`` serving a synthetic driver in its own process (session)."""

    def __init__(self, folder: Path, config: dict[str, Any], *args: str, bind: str = "tcp://127.0.0.1:*") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        n = len(list(folder.glob("server-*.log")))
        config_file = folder / f"server-{n}.yaml"
        config_file.write_text(yaml.safe_dump(config))
        self.log_file = folder / f"server-{n}.log"
        with open(self.log_file, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent.cli", "serve-instrument", DRIVER, "--bind", bind, "--config", str(config_file),
                 "--name", "reactor", "--json", *args],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
            )
        self.address = self._ready(timeout=40)["address"]

    def _ready(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if readable else ""
        if not line:
            self.kill()
            raise AssertionError(f"server did not start (exit {self.proc.returncode}): {self.log()}")
        return json.loads(line)  # type: ignore[no-any-return]

    def log(self) -> str:
        return self.log_file.read_text()

    def wait_for_log(self, text: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert time.monotonic() < deadline, f"{text!r} never appeared in the server log:\n{self.log()}"
            time.sleep(0.05)
        return self.log()

    def kill(self) -> None:
        """SIGKILL, as a crashed instrument PC: nothing is cleaned up."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """A factory of served drivers, all stopped at the end of the test."""
    started: list[Served] = []

    def start(config: dict[str, Any], *args: str, bind: str = "tcp://127.0.0.1:*") -> Served:
        served = Served(tmp_path / "server", config, *args, bind=bind)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


def _config(journal: Path, **settings: Any) -> dict[str, Any]:
    return {"inputs": {k: list(v) for k, v in INPUTS.items()}, "journal_dir": str(journal), **settings}


@contextmanager
def client(address: str, **settings: Any) -> Iterator[RemoteDriver]:
    driver = RemoteDriver("reactor", RemoteSettings(address=address, **settings))
    try:
        yield driver
    finally:
        driver.close()


@contextmanager
def serving(driver: Any, **options: Any) -> Iterator[InstrumentServer]:
    """An in-process server on a free loopback port, its loop in a thread."""
    server = InstrumentServer(driver, "tcp://127.0.0.1:*", **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.close()
        thread.join(5)
        assert not thread.is_alive(), "the server loop did not stop"


def _cli_keys(name: str, folder: Path) -> dict[str, str]:
    done = subprocess.run([sys.executable, "-m", "agent.cli", "keys", name, "--dir", str(folder), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


# -- end to end through `labpilot serve-instrument` ---------------------------------------------------


@pytest.mark.slow
def test_served_driver_answers_as_the_local_driver_and_never_measures_twice(serve: Any, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    served = serve(_config(journal), "--serializer", "msgpack")
    local = SyntheticPropertyDriver("reactor", SyntheticSettings(inputs=INPUTS))  # same physics, no journal
    with client(served.address) as remote, client(served.address, serializer="msgpack") as packed:
        assert remote.describe() == packed.describe() == local.describe()
        outside = _request("a0", temperature=600.0, time=12.0)
        with pytest.raises(InstrumentLimitError) as refused:
            local.check(outside)
        with pytest.raises(InstrumentLimitError, match="temperature=600.0 is outside the limits") as remote_refused:
            remote.check(outside)
        assert str(remote_refused.value) == str(refused.value)
        assert remote.check(_request("a1")) is None

        measured = remote.measure(_request("a1"))
        assert measured.scalar("yield") == local.measure(_request("a1")).scalar("yield")  # bit-exact through JSON
        assert measured.timing.instrument_seconds == 625 and measured.timing.wall_seconds > 0
        # The same attempt again, in either format, from either client: the stored result, not a new measurement.
        for again in (remote.measure(_request("a1")), packed.measure(_request("a1"))):
            assert again.scalar("yield") == measured.scalar("yield") and again.timing == measured.timing
        assert MeasurementJournal(journal).acquisitions() == ["a1"]

        recovered = packed.recover("a1")
        assert recovered is not None and recovered.recovered and recovered.scalar("yield") == measured.scalar("yield")
        assert remote.recover("never-measured") is None
        health = remote.health()
        assert health["name"] == "reactor" and health["measured"] == 1 and health["busy"] is False
        assert remote.planning_model() is None  # the synthetic instrument has none
        remote.stop(True)


@pytest.mark.slow
def test_a_client_whose_key_is_not_authorised_is_refused_and_logged(serve: Any, tmp_path: Path) -> None:
    keys, authorised = tmp_path / "keys", tmp_path / "authorised"
    server_key, good, intruder = (_cli_keys(n, keys) for n in ("server", "good", "intruder"))
    authorised.mkdir()
    shutil.copy(good["public_key_file"], authorised)
    # Re-creating a pair would lock out whoever holds the old one: refused.
    again = subprocess.run([sys.executable, "-m", "agent.cli", "keys", "good", "--dir", str(keys)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already exist" in again.stderr
    assert oct(Path(good["secret_key_file"]).stat().st_mode & 0o777) == "0o600"

    served = serve(_config(tmp_path / "journal"), "--server-key", server_key["secret_key_file"], "--clients", str(authorised))
    assert "UNAUTHENTICATED" not in served.log()
    with client(served.address, client_secret_key_file=good["secret_key_file"],
                server_public_key_file=server_key["public_key_file"]) as allowed:
        assert allowed.health()["authenticated"] is True
        assert allowed.measure(_request("k1")).attempt_id == "k1"
    with client(served.address, request_timeout_seconds=1.5, client_secret_key_file=intruder["secret_key_file"],
                server_public_key_file=server_key["public_key_file"]) as refused:
        started = time.monotonic()
        with pytest.raises(InstrumentUnreachable, match="did not answer health within 1.5 s"):
            refused.health()
        assert time.monotonic() - started < 5
    log = served.wait_for_log("refused client: DENIED (CURVE)")
    assert "refused client" in log
    # No keys at all: the handshake itself fails, and nothing is answered either.
    with client(served.address, request_timeout_seconds=1.0) as plain, pytest.raises(InstrumentUnreachable):
        plain.health()


@pytest.mark.slow
def test_server_killed_mid_measurement_then_recover_after_restart(serve: Any, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    # 1 virtual second at 3 real seconds per virtual second: a measurement takes 3 s of real time.
    config = _config(journal, synthesis_seconds=1.0, motion_seconds=0.0, overhead_seconds=0.0, realtime_factor=3.0)
    first = serve(config)
    address = first.address
    outcome: dict[str, Any] = {}
    with client(address, request_timeout_seconds=2, heartbeat_timeout_seconds=1.5) as remote, \
            client(address, request_timeout_seconds=2) as watcher:

        def measure() -> None:
            try:
                outcome["result"] = remote.measure(_request("k1"))
            except Exception as exc:  # noqa: BLE001 — inspected below
                outcome["error"] = exc

        thread = threading.Thread(target=measure)
        thread.start()
        deadline = time.monotonic() + 10
        while not watcher.health()["busy"]:  # the server is in the middle of the measurement
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.kill()
        killed = time.monotonic()
        thread.join(10)
        assert not thread.is_alive()
        error = outcome.get("error")
        assert isinstance(error, InstrumentUnreachable), outcome
        assert "k1" in str(error) and "unknown" in str(error)
        assert time.monotonic() - killed < 1.5 + 1.0  # the heartbeat timeout, not the measurement's length

        # Restarted on the same address and journal: the driver never finished k1, so nothing to adopt.
        second = serve(config, bind=address)
        assert remote.recover("k1") is None  # the same client: its socket was rebuilt after the timeout
        assert MeasurementJournal(journal).acquisitions() == []

        # k2 is finished by the driver after its client went away, then the server dies before anyone asks.
        ctx = zmq.Context()
        try:
            raw = ctx.socket(zmq.DEALER)
            raw.linger = 0
            raw.connect(address)
            raw.send(get_codec("json").encode({"v": 1, "id": "m2", "op": "measure",
                                               "request": {"attempt_id": "k2", "params": PARAMS}}))
            assert raw.poll(5000), "the measure was not accepted"
            assert json.loads(raw.recv())["heartbeat"] is True
            raw.close()  # the client crashed
        finally:
            ctx.destroy(linger=0)
        deadline = time.monotonic() + 15
        while "k2" not in MeasurementJournal(journal).acquisitions():
            assert time.monotonic() < deadline, second.log()
            time.sleep(0.05)
        second.kill()
        serve(config, bind=address)
        adopted = remote.recover("k2")
        assert adopted is not None and adopted.recovered and adopted.attempt_id == "k2"
        assert adopted.scalar("yield") == MeasurementJournal(journal).read("k2").scalar("yield")  # type: ignore[union-attr]
        assert remote.recover("k1") is None
        assert MeasurementJournal(journal).acquisitions() == ["k2"]


@pytest.mark.slow
def test_cli_refuses_to_serve_unauthenticated_beyond_loopback(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps(_config(tmp_path / "journal")))
    done = subprocess.run([sys.executable, "-m", "agent.cli", "serve-instrument", DRIVER, "--bind", "tcp://0.0.0.0:5555",
                           "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "refusing to bind" in done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: {temperature: [500, 300]}\nnoise_sd: -1\n")
    done = subprocess.run([sys.executable, "-m", "agent.cli", "serve-instrument", DRIVER, "--config", str(bad)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "noise_sd" in done.stderr and "invalid settings" in done.stderr


# -- in-process server -----------------------------------------------------------------------------


def _synthetic(tmp_path: Path, **settings: Any) -> SyntheticPropertyDriver:
    return SyntheticPropertyDriver("reactor", SyntheticSettings(inputs=INPUTS, journal_dir=str(tmp_path / "journal"), **settings))


def test_unauthenticated_server_binds_loopback_only(tmp_path: Path) -> None:
    driver = _synthetic(tmp_path)
    for address in ("tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.168.1.20:5555", "tcp://eth0:5555"):
        with pytest.raises(ValueError, match="refusing to bind"):
            InstrumentServer(driver, address)
    for address in ("tcp://localhost:*", f"ipc://{tmp_path}/reactor.sock"):
        InstrumentServer(driver, address).close()
    with pytest.raises(ValueError, match="go together"):
        InstrumentServer(driver, "tcp://127.0.0.1:*", server_secret_key_file=tmp_path / "x.key_secret")


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("tcp://127.0.0.1:5555", True), ("tcp://127.3.2.1:1", True), ("tcp://localhost:*", True), ("tcp://[::1]:5555", True),
     ("ipc:///tmp/x", True), ("inproc://x", True), ("tcp://0.0.0.0:5555", False), ("tcp://*:5555", False),
     ("tcp://10.0.0.7:5555", False), ("tcp://127.example.org:1", False), ("udp://127.0.0.1:1", False), ("127.0.0.1", False)],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_heartbeats_carry_a_long_measurement_and_one_attempt_is_measured_once(tmp_path: Path) -> None:
    # 2 s of real time per measurement, far beyond the clients' 0.5 s request timeout.
    driver = _synthetic(tmp_path, synthesis_seconds=1.0, motion_seconds=0.0, overhead_seconds=0.0, realtime_factor=2.0)
    with serving(driver, heartbeat_interval_seconds=0.2) as server:
        options = {"request_timeout_seconds": 0.5, "heartbeat_timeout_seconds": 1.0}
        with client(server.address, **options) as a, client(server.address, **options) as b, \
                client(server.address, **options) as watcher:
            results: dict[str, Measurement] = {}
            threads = [threading.Thread(target=lambda c=c, k=k: results.__setitem__(k, c.measure(_request("j1"))))
                       for c, k in ((a, "a"), (b, "b"))]
            for t in threads:
                t.start()
            time.sleep(0.5)
            asked = time.monotonic()
            health = watcher.health()  # answered at once while the driver is busy
            assert time.monotonic() - asked < 0.3 and health["busy"] and health["queued"] == 0
            for t in threads:
                t.join(10)
            assert results["a"].scalar("yield") == results["b"].scalar("yield")
            assert MeasurementJournal(tmp_path / "journal").acquisitions() == ["j1"]
            assert watcher.health()["measured"] == 1


class _SlowToDescribe:
    """A driver whose first ``describe`` hangs longer than the client waits."""

    name = "slow"

    def __init__(self) -> None:
        self.calls = 0

    def describe(self) -> dict[str, DataKey]:
        self.calls += 1
        if self.calls == 1:
            time.sleep(1.0)
        return {f"call{self.calls}": DataKey(dtype="number", units="a.u.")}

    def check(self, request: MeasurementRequest) -> None: ...

    def measure(self, request: MeasurementRequest) -> Measurement:
        raise AssertionError("this test only asks describe: a measure would be a bug")

    def stop(self, success: bool) -> None: ...


def test_a_late_reply_is_never_taken_for_the_next_one() -> None:
    with serving(_SlowToDescribe()) as server, client(server.address, request_timeout_seconds=0.4) as remote:
        with pytest.raises(InstrumentUnreachable, match="did not answer describe within 0.4 s"):
            remote.describe()
        time.sleep(1.0)  # the late answer to call 1 has been sent by now
        assert list(remote.describe()) == ["call2"]


class _ArrayDriver:
    """A detector returning a 4 MB float64 image with NaN and inf in it; plans as SAS, XRD or neither."""

    name = "detector"

    def __init__(self, plan: Any = None) -> None:
        rng = np.random.default_rng(1)
        self.image = rng.normal(size=(512, 1024))
        self.image[0, :3] = [np.nan, np.inf, -np.inf]
        self.plan = plan

    def describe(self) -> dict[str, DataKey]:
        return {"image": DataKey(dtype="array", shape=[512, 1024], units="counts")}

    def check(self, request: MeasurementRequest) -> None: ...

    def measure(self, request: MeasurementRequest) -> Measurement:
        return Measurement(attempt_id=request.attempt_id, instrument=self.name, params=request.params,
                           data={"image": self.image}, sigma={"image": np.sqrt(np.abs(self.image))},
                           timing=Timing(exposure_seconds=1.0))

    def stop(self, success: bool) -> None: ...

    def planning_model(self) -> Any:
        return self.plan


def test_arrays_cross_bit_exact_with_msgpack_and_as_lists_with_json() -> None:
    driver = _ArrayDriver()
    with serving(driver, serializer="msgpack") as server:
        with client(server.address, serializer="msgpack") as packed:
            image = packed.measure(_request("i1")).data["image"]
            assert image.dtype == np.float64 and image.shape == (512, 1024) and image.flags.writeable
            assert image.tobytes() == driver.image.tobytes()  # NaN and ±inf kept bit for bit
        with client(server.address) as plain:
            image = plain.measure(_request("i1")).data["image"]
            # JSON has no NaN or inf: they travel as null and come back as NaN; finite values are exact.
            assert np.isnan(image[0, :3]).all()
            assert np.array_equal(image[:, 3:], driver.image[:, 3:]) and np.array_equal(image[1:], driver.image[1:])


def test_message_size_is_enforced_on_both_sides() -> None:
    with serving(_ArrayDriver(), serializer="msgpack", max_message_bytes=2**20) as server:
        with client(server.address, serializer="msgpack") as remote:
            with pytest.raises(RemoteProtocolError, match="exceeds max_message_bytes=1048576"):
                remote.measure(_request("big"))
            assert remote.health()["measured"] == 1
    with serving(_ArrayDriver(), serializer="msgpack") as server:
        with client(server.address, serializer="msgpack", max_message_bytes=2**20) as remote:
            with pytest.raises(RemoteProtocolError, match="above max_message_bytes=1048576"):
                remote.measure(_request("big"))
            assert remote.health()["measured"] == 1  # a fresh socket after the refused reply
        with client(server.address, max_message_bytes=1024) as remote:
            with pytest.raises(RemoteProtocolError, match="request is .* bytes, above max_message_bytes=1024"):
                remote.check(MeasurementRequest(attempt_id="x", params={"p": "x" * 2000}))


def _sas_model() -> SASInstrumentModel:
    q = np.geomspace(0.003, 0.3, 40)
    configuration = SASConfigurationModel(name="5m", q=q, dq=0.05 * q, counts_per_second=1e4 / (1 + q * 100),
                                          background=np.full(40, 0.05), min_exposure_seconds=10)
    return SASInstrumentModel(configurations=[configuration], change_seconds=180, overhead_seconds=20)


def _xrd_model() -> XRDInstrumentModel:
    return XRDInstrumentModel(lines=[(1.5405929, 1.0), (1.5444274, 0.5)], caglioti_u=0.01, caglioti_v=-0.005,
                              caglioti_w=0.005, goniometer_min_deg=5, goniometer_max_deg=120, goniometer_radius_mm=240,
                              setup_seconds=15, motion_deg_per_second=5, step_overhead_seconds=0.01, min_step_deg=0.005,
                              max_points=20000)


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_planning_models_cross_the_wire(serializer: str) -> None:
    for plan in (_sas_model(), _xrd_model()):
        with serving(_ArrayDriver(plan), serializer=serializer) as server, \
                client(server.address, serializer=serializer) as remote:
            rebuilt = remote.planning_model()
            assert type(rebuilt) is type(plan)
            assert rebuilt.model_dump_json() == plan.model_dump_json()
    with serving(_ArrayDriver(object())) as server, client(server.address) as remote:
        assert remote.planning_model() is None  # not a model the wire knows: None, and a log line


def test_driver_failures_reach_the_client_and_are_not_cached(tmp_path: Path) -> None:
    with serving(_synthetic(tmp_path, failure_probability=1.0)) as server, client(server.address) as remote:
        for _ in range(2):
            with pytest.raises(RemoteInstrumentError, match="RuntimeError: reactor: simulated instrument fault") as failed:
                remote.measure(_request("f1"))
            assert failed.value.error_type == "RuntimeError"
        assert remote.health()["measured"] == 0


def test_evicted_results_are_answered_from_the_driver_records_not_measured_again(tmp_path: Path) -> None:
    with serving(_synthetic(tmp_path), max_cached_results=1) as server, client(server.address) as remote:
        first = remote.measure(_request("e1"))
        remote.measure(_request("e2"))  # pushes e1 out of the server's memory
        again = remote.measure(_request("e1"))
        assert again.scalar("yield") == first.scalar("yield") and again.recovered
        assert MeasurementJournal(tmp_path / "journal").acquisitions() == ["e1", "e2"]


# -- malformed and random messages ---------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_envelope_like = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 2, "1", None]), "id": st.text(max_size=8) | st.integers(-(2**63), 2**63 - 1),
     "op": st.sampled_from(["describe", "check", "measure", "recover", "stop", "health", "planning_model", "explode"])},
    optional={"request": _json_values | st.fixed_dictionaries({"attempt_id": st.text(max_size=5), "params": _json_values}),
              "attempt_id": _json_values, "success": _json_values, "extra": _json_values},
)
_json_objects = st.dictionaries(st.text(max_size=10), _json_values, max_size=5) | _envelope_like


def _final_reply(sock: zmq.Socket[bytes]) -> dict[str, Any]:
    """The one final reply to the last message (heartbeats skipped), decoded in its format."""
    while True:
        assert sock.poll(5000), "the server did not answer"
        data = sock.recv_multipart()[-1]  # [b"", payload] when the message looked like a REQ client's
        reply = get_codec(detect_serializer(data)).decode(data)
        if not reply["heartbeat"]:
            return reply  # type: ignore[no-any-return]


def test_malformed_and_random_messages_never_stop_the_server(tmp_path: Path) -> None:
    with serving(_synthetic(tmp_path), serializer="msgpack", max_message_bytes=4096) as server:
        ctx = zmq.Context()
        raw = ctx.socket(zmq.DEALER)
        raw.linger = 0
        raw.connect(server.address)
        try:
            @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(st.binary(max_size=300))
            def random_bytes(payload: bytes) -> None:
                raw.send(payload)
                reply = _final_reply(raw)
                assert reply["ok"] is False and reply["error"]["type"] == "ProtocolError"

            @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(st.lists(st.binary(max_size=40), min_size=2, max_size=4))
            def random_frames(frames: list[bytes]) -> None:
                raw.send_multipart(frames)
                assert _final_reply(raw)["ok"] is False

            @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(_json_objects, st.sampled_from(["json", "msgpack"]))
            def random_objects(message: dict[str, Any], fmt: str) -> None:
                raw.send(get_codec(fmt).encode(message))
                reply = _final_reply(raw)  # an answer, whatever it says
                assert isinstance(reply["ok"], bool)

            random_bytes()
            random_frames()
            random_objects()

            for payload, reason in [
                (b"x" * 5000, "exceeds max_message_bytes=4096"),
                (b'{"v": 2, "id": "a", "op": "health"}', "unsupported protocol version 2"),
                (b'{"v": 1, "id": "a", "op": "explode"}', "op: Input should be"),
                (b'{"v": 1, "id": "a", "op": "measure"}', "op 'measure' needs 'request'"),
                (b'{"v": 1, "id": "a", "op": "health", "x": NaN}', "NaN is not valid JSON"),
            ]:
                raw.send(payload)
                reply = _final_reply(raw)
                assert reply["ok"] is False and reason in reply["error"]["message"], reply
        finally:
            ctx.destroy(linger=0)
        # Still serving, normal clients and a plain REQ socket alike.
        with client(server.address) as remote:
            assert remote.health()["name"] == "reactor"
            assert remote.measure(_request("after")).attempt_id == "after"
        ctx = zmq.Context()
        try:
            req = ctx.socket(zmq.REQ)
            req.linger = 0
            req.connect(server.address)
            req.send(b'{"v": 1, "id": "r1", "op": "health"}')
            assert req.poll(5000)
            assert json.loads(req.recv())["result"]["name"] == "reactor"
        finally:
            ctx.destroy(linger=0)


# -- settings, kinds and the optional serializer ----------------------------------------------------------


def test_remote_settings_errors_name_the_field(tmp_path: Path) -> None:
    cases = [
        ({"address": "tcp://10.0.0.7:5555"}, "is not loopback"),
        ({"address": "http://127.0.0.1:5555"}, "expected tcp://HOST:PORT"),
        ({"address": "tcp://127.0.0.1:5555", "client_secret_key_file": "c.key_secret"}, "go together"),
        ({"address": "tcp://127.0.0.1:5555", "request_timeout_seconds": math.inf}, "request_timeout_seconds"),
        ({"address": "tcp://127.0.0.1:5555", "serializer": "pickle"}, "serializer"),
        ({"address": "tcp://127.0.0.1:5555", "port": 1}, "port"),
    ]
    for data, message in cases:
        with pytest.raises(ValidationError, match=message):
            RemoteSettings.model_validate(data)
    missing = RemoteSettings(address="tcp://10.0.0.7:5555", client_secret_key_file=str(tmp_path / "c.key_secret"),
                             server_public_key_file=str(tmp_path / "s.key"))
    with pytest.raises(ValueError, match="client_secret_key_file: .* does not exist"):
        RemoteDriver("x", missing)


def test_remote_is_an_instrument_kind(tmp_path: Path) -> None:
    from agent.kinds import INSTRUMENT_KINDS, build_driver

    settings = {"address": "tcp://127.0.0.1:5999", "serializer": "json"}
    assert INSTRUMENT_KINDS["remote"].complete(settings, None, tmp_path) == settings  # type: ignore[arg-type]
    driver = build_driver("remote", "saxs", settings)
    try:
        assert isinstance(driver, RemoteDriver) and driver.name == "saxs"
    finally:
        driver.close()  # type: ignore[attr-defined]


def test_missing_msgpack_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "msgpack", None)  # what `import msgpack` meets when it is not installed
    with pytest.raises(SerializerUnavailable, match="pip install msgpack"):
        RemoteDriver("x", RemoteSettings(address="tcp://127.0.0.1:5999", serializer="msgpack"))
    with pytest.raises(SerializerUnavailable, match="use serializer: json"):
        InstrumentServer(_synthetic(tmp_path), "tcp://127.0.0.1:*", serializer="msgpack")

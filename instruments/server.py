"""Serve any driver over ZMQ: ``InstrumentServer`` (the other end of ``instruments.remote.RemoteDriver``).

Runs on the instrument's own PC, next to the hardware. One socket loop (``serve_forever``) owns the
ROUTER socket and answers ``health``, ``describe``, ``check`` and ``planning_model`` at once; a
``measure`` goes to one worker thread — one measurement at a time, because a physical instrument
does one thing — while the loop keeps answering and sends heartbeats to everyone waiting for it.
``recover`` and ``stop`` run in short-lived threads so a slow driver never stalls the loop.

Guarantees (the same as ``instruments.actor.InstrumentService``):
- a repeated attempt id is answered with the stored result of that attempt, never measured twice;
  a ``measure`` for an attempt that is running joins it; after a restart of the server, the driver's
  own records (``recover``) are asked before measuring; replays are counted (``health()["duplicates"]``);
- ``check`` runs before every ``measure``, whoever sends it: a request outside the limits is refused
  here, logged, and never reaches the driver's ``measure``;
- ``recover`` answers from those results, or from the driver's own ``recover`` (its data files);
- a malformed, oversized or unknown message gets an error reply (when it carries an identity to
  reply to) and one log line, and the server keeps serving.

Security: given a server secret key and a folder of authorised client public keys it uses CURVE
(encryption and authentication, pyzmq's ``ThreadAuthenticator``); a refused client is logged by the
authenticator and never gets a reply. Without keys it binds loopback only and warns.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message
import zmq.auth
from pydantic import ValidationError
from zmq.auth.thread import ThreadAuthenticator

from instruments.protocol import Driver, InstrumentLimitError, PlanningModelDriver, RecoverableDriver
from instruments.remote import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_ID_LENGTH,
    PROTOCOL_VERSION,
    Codec,
    ErrorInfo,
    ReplyEnvelope,
    RequestEnvelope,
    SerializerUnavailable,
    detect_serializer,
    envelope_message,
    get_codec,
    is_loopback,
    load_secret_certificate,
    planning_model_to_wire,
    validation_summary,
)
from instruments.types import Measurement, MeasurementRequest

log = logging.getLogger("labpilot.instruments.server")

HARD_LIMIT_FACTOR = 4
"""libzmq drops a connection whose message exceeds this × max_message_bytes before we see it (a
memory guard); messages between the two limits are read and refused with an error reply."""

_server_ids = itertools.count()


class _AuthLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The authenticator's log, with its refusals raised from DEBUG to WARNING: an operator must see
    who knocked with a key that is not authorised, without the debug chatter of every handshake."""

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        text = str(msg) % args if args else str(msg)  # pyzmq passes "DENIED" as an argument of "%s (CURVE) …"
        if text.startswith("DENIED"):
            self.warning("refused client: %s", text, **kwargs)
        else:
            super().debug(msg, *args, **kwargs)


@dataclass
class _Waiter:
    """Who is waiting for a job: the ROUTER identity, their message id and format."""

    identity: bytes
    message_id: str
    codec: Codec
    delimiter: bool  # a REQ client put an empty frame before its payload; replies must too


@dataclass(eq=False)  # identity semantics: jobs live in a set
class _Job:
    """A driver call run off the socket loop: a measure (worker thread) or a recover/stop."""

    op: str
    key: str
    run: Callable[[], Any]
    waiters: list[_Waiter] = field(default_factory=list)
    state: str = "queued"
    started: float = field(default_factory=time.monotonic)
    ok: bool = False
    value: Any = None


def _handshake_failure(event: int, value: int) -> str:
    """What a failed CURVE handshake most likely was, from the monitor's event and value."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "a client without CURVE keys"
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and value == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "a client with the wrong server key (or a corrupted handshake)"
    if event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        # libzmq reports a plain-text client that gives up on the CURVE greeting this way.
        return f"a client that broke off the handshake ({os.strerror(value)}): typically one without CURVE keys"
    return f"a failed handshake (event {event:#x}, value {value:#x})"


class RefusalLog:
    """Logs connections refused in the CURVE handshake: the first of each kind at once, then at most
    one line per ``every_seconds`` with how many more there were (a refused client retries every
    100 ms: one line each would flood the log)."""

    def __init__(self, every_seconds: float = 30.0) -> None:
        self.every_seconds = every_seconds
        self._last: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def record(self, address: str, event: int, value: int) -> None:
        what = _handshake_failure(event, value)
        now = time.monotonic()
        last = self._last.get(what)
        self._unlogged[what] = self._unlogged.get(what, 0) + 1
        if last is not None and now - last < self.every_seconds:
            return
        count = self._unlogged.pop(what)
        more = f" ({count} connection attempts since the last report)" if last is not None else ""
        log.warning("refused a connection on %s: %s%s", address, what, more)
        self._last[what] = now


def _check_server_options(
    bind: str, server_secret_key_file: str | Path | None, authorized_clients_dir: str | Path | None,
    max_message_bytes: int, heartbeat_interval_seconds: float, max_cached_results: int,
) -> None:
    if (server_secret_key_file is None) != (authorized_clients_dir is None):
        raise ValueError("server_secret_key_file and authorized_clients_dir go together (CURVE needs both)")
    if server_secret_key_file is None and not is_loopback(bind):
        raise ValueError(
            f"refusing to bind {bind!r} without CURVE keys: an unauthenticated instrument server may only listen "
            "on loopback (127.0.0.1, localhost, ipc://); pass a server key and an authorised-clients folder"
        )
    if heartbeat_interval_seconds <= 0 or max_message_bytes < 1024 or max_cached_results < 0:
        raise ValueError("heartbeat_interval_seconds must be > 0, max_message_bytes >= 1024, max_cached_results >= 0")


class InstrumentServer:
    """Serves ``driver`` on ``bind`` (e.g. ``tcp://127.0.0.1:5555``, ``tcp://*:5555`` with keys).

    ``server_secret_key_file`` (NAME.key_secret) and ``authorized_clients_dir`` (a folder of client
    NAME.key files) switch CURVE on; both or neither. ``serializer='msgpack'`` also accepts msgpack
    requests (JSON always works); replies go in the request's format. ``address`` is the bound
    endpoint (with the real port when ``bind`` asked for ``*``). ``max_cached_results`` bounds the
    memory spent on finished measurements; an evicted attempt asked again is answered by the
    driver's ``recover``, never measured again.
    """

    def __init__(
        self,
        driver: Driver,
        bind: str,
        *,
        server_secret_key_file: str | Path | None = None,
        authorized_clients_dir: str | Path | None = None,
        serializer: str = "json",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        heartbeat_interval_seconds: float = 1.0,
        max_cached_results: int = 64,  # 64 × a 4 MB image = 256 MB at most
    ) -> None:
        _check_server_options(bind, server_secret_key_file, authorized_clients_dir, max_message_bytes,
                              heartbeat_interval_seconds, max_cached_results)
        self.driver = driver
        self.max_message_bytes = max_message_bytes
        self.heartbeat_interval_seconds = heartbeat_interval_seconds
        self.max_cached_results = max_cached_results
        self._codecs: dict[str, Codec] = {"json": get_codec("json")}
        if serializer != "json":
            self._codecs[serializer] = get_codec(serializer)  # a missing msgpack fails here, at start
        self.authenticated = server_secret_key_file is not None

        self._results: OrderedDict[str, Measurement] = OrderedDict()
        self._finished: set[str] = set()  # every attempt measured here, cached or evicted
        self._measures: dict[str, _Job] = {}
        self._others: set[_Job] = set()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._measured = 0
        self._duplicates = 0  # measure requests for an attempt measured already (memory or records)
        self._refused = 0  # measure requests the driver's own check refused
        self._stopping = threading.Event()
        self._loop_exited = threading.Event()
        self._loop_thread: threading.Thread | None = None
        self._closed = False
        self._wake_lock = threading.Lock()

        self._context = zmq.Context()
        self._auth: ThreadAuthenticator | None = None
        try:
            self._open_sockets(bind, server_secret_key_file, authorized_clients_dir)
        except BaseException:
            self._teardown()
            raise
        self._worker = threading.Thread(target=self._work, name=f"measure-{driver.name}", daemon=True)
        self._worker.start()
        if not self.authenticated:
            log.warning("serving %s UNAUTHENTICATED on %s (loopback only: anyone on this machine may use it)",
                        driver.name, self.address)

    def _open_sockets(self, bind: str, server_secret_key_file: str | Path | None,
                      authorized_clients_dir: str | Path | None) -> None:
        """The ROUTER socket (CURVE if keys are given) bound to ``bind``, and the inproc wake-up pair."""
        self._router = self._context.socket(zmq.ROUTER)
        self._router.linger = 0
        self._router.setsockopt(zmq.MAXMSGSIZE, HARD_LIMIT_FACTOR * self.max_message_bytes)
        if server_secret_key_file is not None and authorized_clients_dir is not None:
            self._configure_curve(Path(server_secret_key_file), Path(authorized_clients_dir))
        self._router.bind(bind)
        self.address: str = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        # CURVE refuses a client without keys, or with the wrong server key, inside the handshake —
        # before any authenticator sees it; the socket's monitor is the only place that learns of it.
        self._monitor = (self._router.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
                         if server_secret_key_file is not None else None)
        self._refusals = RefusalLog()
        # Worker threads wake the loop through this pair instead of touching the ROUTER socket.
        wake = f"inproc://labpilot-server-wake-{next(_server_ids)}"
        self._wake_pull = self._context.socket(zmq.PULL)
        self._wake_pull.bind(wake)
        self._wake_push = self._context.socket(zmq.PUSH)
        self._wake_push.connect(wake)

    def _configure_curve(self, key_file: Path, clients: Path) -> None:
        public, secret = load_secret_certificate(key_file, "server key")
        if not clients.is_dir():
            raise ValueError(f"authorised clients: {clients} is not a folder (put the clients' NAME.key files there)")
        n_keys = len(zmq.auth.load_certificates(clients))
        if n_keys == 0:
            log.warning("no authorised client keys (*.key) in %s: every client will be refused", clients)
        self._auth = ThreadAuthenticator(self._context, log=_AuthLog(logging.getLogger(f"{log.name}.auth"), {}))
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(clients))
        self._router.curve_server = True
        self._router.curve_publickey = public
        self._router.curve_secretkey = secret
        log.info("CURVE on: %d authorised client key(s) from %s (read at start; restart to change)", n_keys, clients)

    # -- the loop ---------------------------------------------------------------------------------
    def serve_until_interrupted(self) -> None:
        """``serve_forever`` until Ctrl-C (or a SIGTERM handler raising KeyboardInterrupt), then close."""
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    def serve_forever(self) -> None:
        """Answer requests until ``close()`` (from any thread) or an exception (KeyboardInterrupt)."""
        if self._closed:
            raise RuntimeError("server is closed")
        self._loop_thread = threading.current_thread()
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._wake_pull, zmq.POLLIN)
        if self._monitor is not None:
            poller.register(self._monitor, zmq.POLLIN)
        next_beat = time.monotonic() + self.heartbeat_interval_seconds
        try:
            while not self._stopping.is_set():
                timeout_ms = max(0.0, next_beat - time.monotonic()) * 1000
                events = dict(poller.poll(timeout_ms))
                if self._wake_pull in events:
                    self._drain_wakes()
                if self._router in events:
                    self._read_requests()
                if self._monitor is not None and self._monitor in events:
                    self._read_handshake_failures()
                if time.monotonic() >= next_beat:
                    self._heartbeat()
                    next_beat = time.monotonic() + self.heartbeat_interval_seconds
        finally:
            self._loop_exited.set()

    def _read_handshake_failures(self) -> None:
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            self._refusals.record(self.address, int(event["event"]), int(event["value"]))

    def _drain_wakes(self) -> None:
        while True:
            try:
                self._wake_pull.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
        while True:
            try:
                job = self._done.get_nowait()
            except queue.Empty:
                return
            self._finish(job)

    def _read_requests(self) -> None:
        for _ in range(256):  # then give heartbeats and finished jobs a turn
            try:
                frames = self._router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                self._on_message(frames)
            except Exception:  # noqa: BLE001 — a bug in one request must not end the service
                log.exception("internal error while handling a message; still serving")

    # -- requests -----------------------------------------------------------------------------------
    def _on_message(self, frames: list[bytes]) -> None:
        identity, body = frames[0], frames[1:]
        delimiter = len(body) == 2 and body[0] == b""
        if delimiter:
            body = body[1:]
        default = self._codecs["json"]
        if len(body) != 1:
            self._refuse(_Waiter(identity, "", default, delimiter), f"expected one payload frame, got {len(body)}")
            return
        payload = body[0]
        if len(payload) > self.max_message_bytes:
            self._refuse(_Waiter(identity, "", default, delimiter),
                         f"message of {len(payload)} bytes exceeds max_message_bytes={self.max_message_bytes}")
            return
        fmt = detect_serializer(payload)
        codec = self._codecs.get(fmt)
        if codec is None:
            self._refuse(_Waiter(identity, "", default, delimiter),
                         f"this server accepts {sorted(self._codecs)} only, not {fmt} (start it with --serializer {fmt})")
            return
        try:
            data = codec.decode(payload)
        except Exception as exc:  # noqa: BLE001 — any decoder failure is a malformed message
            self._refuse(_Waiter(identity, "", codec, delimiter), f"undecodable {fmt} message: {exc}")
            return
        message_id = data.get("id") if isinstance(data, dict) else None
        waiter = _Waiter(identity, message_id if isinstance(message_id, str) and len(message_id) <= MAX_ID_LENGTH else "",
                         codec, delimiter)
        if isinstance(data, dict) and "v" in data and data["v"] != PROTOCOL_VERSION:
            self._refuse(waiter, f"unsupported protocol version {data['v']!r}; this server speaks v{PROTOCOL_VERSION}")
            return
        try:
            envelope = RequestEnvelope.model_validate(data)
        except ValidationError as exc:
            self._refuse(waiter, f"invalid request: {validation_summary(exc)}")
            return
        self._dispatch(envelope, waiter)

    def _dispatch(self, envelope: RequestEnvelope, waiter: _Waiter) -> None:
        op = envelope.op
        try:
            if op == "health":
                self._reply(waiter, self.health())
            elif op == "describe":
                self._reply(waiter, {k: v.model_dump() for k, v in self.driver.describe().items()})
            elif op == "check":
                self.driver.check(envelope.request)  # type: ignore[arg-type]
                self._reply(waiter, None)
            elif op == "planning_model":
                model = self.driver.planning_model() if isinstance(self.driver, PlanningModelDriver) else None
                self._reply(waiter, planning_model_to_wire(model))
            elif op == "measure":
                self._measure(envelope.request, waiter)  # type: ignore[arg-type]
            elif op == "recover":
                self._recover(envelope.attempt_id, waiter)  # type: ignore[arg-type]
            elif op == "stop":
                success = bool(envelope.success)
                self._start_other(_Job("stop", "stop", lambda: self.driver.stop(success), [waiter]))
        except InstrumentLimitError as exc:
            self._reply_error(waiter, "InstrumentLimitError", str(exc))
        except Exception as exc:  # noqa: BLE001 — the driver's failure is the client's answer
            log.warning("%s failed: %s: %s", op, type(exc).__name__, exc)
            self._reply_error(waiter, type(exc).__name__, str(exc))

    def _measure(self, request: MeasurementRequest, waiter: _Waiter) -> None:
        attempt = request.attempt_id
        if attempt in self._results:
            self._results.move_to_end(attempt)
            self._duplicates += 1
            self._reply(waiter, self._results[attempt].model_dump(mode="python"))
            return
        if attempt in self._finished:  # measured here, result evicted: the driver's records answer
            self._duplicates += 1
            log.info("attempt %s was measured already; answering from the driver's records", attempt)
            self._start_other(_Job("measure-again", attempt, lambda: self._recorded(attempt), [waiter]))
            return
        job = self._measures.get(attempt)
        if job is None:
            job = _Job("measure", attempt, lambda: self._timed_measure(request))
            self._measures[attempt] = job
            self._queue.put(job)
        job.waiters.append(waiter)
        self._beat(job, waiter)  # accepted: the client now waits on heartbeats, not on its request timeout

    def _recover(self, attempt: str, waiter: _Waiter) -> None:
        if attempt in self._results:
            self._reply(waiter, self._results[attempt].model_copy(update={"recovered": True}).model_dump(mode="python"))
        elif attempt in self._measures:
            self._reply(waiter, None)  # running or queued: not finished, so nothing to adopt yet
        elif isinstance(self.driver, RecoverableDriver):
            self._start_other(_Job("recover", attempt, lambda: self.driver.recover(attempt), [waiter]))  # type: ignore[attr-defined]
        else:
            self._reply(waiter, None)

    def _recorded(self, attempt: str) -> Measurement:
        found = self.driver.recover(attempt) if isinstance(self.driver, RecoverableDriver) else None
        if found is None:
            raise RuntimeError(
                f"attempt {attempt} was measured already and its result left this server's memory, and the driver "
                "keeps no records to recover it from; not measuring it twice"
            )
        return found

    def _timed_measure(self, request: MeasurementRequest) -> Measurement:
        """In the worker thread: the driver's records first (a replay after a restart of this server),
        then its ``check`` (limits enforced here, whatever the client did), then the measurement."""
        if isinstance(self.driver, RecoverableDriver):
            recorded = self.driver.recover(request.attempt_id)
            if recorded is not None:
                self._duplicates += 1
                log.info("attempt %s was measured already; answering from the driver's records", request.attempt_id)
                return recorded
        try:
            self.driver.check(request)
        except InstrumentLimitError as exc:
            self._refused += 1
            log.warning("refused to measure %s: %s", request.attempt_id, exc)
            raise
        started = time.perf_counter()
        measurement = self.driver.measure(request)
        timing = measurement.timing.model_copy(update={"wall_seconds": time.perf_counter() - started})
        return measurement.model_copy(update={"timing": timing})

    def health(self) -> dict[str, Any]:
        """name, busy (a measurement running), measured (here, since start), queued, cached."""
        return {
            "name": self.driver.name,
            "busy": any(j.state == "running" for j in self._measures.values()),
            "measured": self._measured,
            "queued": sum(j.state == "queued" for j in self._measures.values()),
            "cached": len(self._results),
            "duplicates": self._duplicates,
            "refused": self._refused,
            "protocol": PROTOCOL_VERSION,
            "authenticated": self.authenticated,
        }

    # -- jobs ---------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._run(job)

    def _start_other(self, job: _Job) -> None:
        self._others.add(job)
        threading.Thread(target=self._run, args=(job,), name=f"{job.op}-{job.key}", daemon=True).start()

    def _run(self, job: _Job) -> None:
        job.state, job.started = "running", time.monotonic()
        try:
            job.value, job.ok = job.run(), True
        except BaseException as exc:  # noqa: BLE001 — handed to the loop, which tells the waiters
            job.value, job.ok = exc, False
        job.state = "done"
        self._done.put(job)
        self._wake()

    def _wake(self) -> None:
        with self._wake_lock:  # one PUSH socket shared by worker threads: the lock is its memory barrier
            if self._closed:
                return
            try:
                self._wake_push.send(b"", zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # the loop is already awake with messages queued

    def _finish(self, job: _Job) -> None:
        if job.op == "measure":
            self._measures.pop(job.key, None)
            if job.ok:
                self._measured += 0 if job.value.recovered else 1  # a replay answered from records is no measurement
                self._finished.add(job.key)
                self._results[job.key] = job.value
                while len(self._results) > self.max_cached_results:
                    self._results.popitem(last=False)
        else:
            self._others.discard(job)
        if not job.ok:
            exc = job.value
            if not isinstance(exc, InstrumentLimitError):
                log.warning("%s %s failed: %s: %s", job.op, job.key, type(exc).__name__, exc)
            for w in job.waiters:
                self._reply_error(w, type(exc).__name__, str(exc))
            return
        result = job.value.model_dump(mode="python") if isinstance(job.value, Measurement) else job.value
        for w in job.waiters:
            self._reply(w, result)

    def _heartbeat(self) -> None:
        for job in [*self._measures.values(), *self._others]:
            for w in job.waiters:
                self._beat(job, w)

    def _beat(self, job: _Job, waiter: _Waiter) -> None:
        state = {"state": job.state, "seconds": round(time.monotonic() - job.started, 3)}
        self._send(waiter, ReplyEnvelope(id=waiter.message_id, ok=True, heartbeat=True), state)

    # -- replies ------------------------------------------------------------------------------------
    def _reply(self, waiter: _Waiter, result: Any) -> None:
        self._send(waiter, ReplyEnvelope(id=waiter.message_id, ok=True), result)

    def _reply_error(self, waiter: _Waiter, error_type: str, message: str) -> None:
        self._send(waiter, ReplyEnvelope(id=waiter.message_id, ok=False, error=ErrorInfo(type=error_type, message=message)))

    def _refuse(self, waiter: _Waiter, reason: str) -> None:
        log.warning("refused a message from client %s: %s", waiter.identity.hex()[:16], reason)
        self._reply_error(waiter, "ProtocolError", reason)

    def _send(self, waiter: _Waiter, envelope: ReplyEnvelope, result: Any = None) -> None:
        try:
            payload = waiter.codec.encode(envelope_message(envelope, result))
        except (TypeError, ValueError, OverflowError) as exc:
            log.warning("reply to %s cannot be encoded as %s: %s", waiter.message_id, waiter.codec.name, exc)
            payload = waiter.codec.encode(envelope_message(ReplyEnvelope(
                id=waiter.message_id, ok=False, error=ErrorInfo(type="ProtocolError", message=f"unencodable reply: {exc}"))))
        if len(payload) > self.max_message_bytes:
            message = (f"reply of {len(payload)} bytes exceeds max_message_bytes={self.max_message_bytes} "
                       "(raise it on server and client)")
            log.warning("reply to %s not sent: %s", waiter.message_id, message)
            payload = waiter.codec.encode(envelope_message(ReplyEnvelope(
                id=waiter.message_id, ok=False, error=ErrorInfo(type="ProtocolError", message=message))))
        frames = [waiter.identity, b"", payload] if waiter.delimiter else [waiter.identity, payload]
        try:
            # ROUTER drops messages to peers that are gone; NOBLOCK so a stalled peer cannot stall the loop.
            # Large replies (images) go zero-copy; small ones are cheaper to copy than to track.
            self._router.send_multipart(frames, zmq.NOBLOCK, copy=len(payload) < zmq.COPY_THRESHOLD)
        except zmq.Again:
            log.warning("reply to %s dropped: the client is not reading", waiter.message_id)

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self, timeout: float = 5.0) -> None:
        """Stop serving and release sockets and threads. A measurement in progress is left to finish in
        its (daemon) thread: stopping the hardware is the campaign's ``stop``, not a server shutdown."""
        if self._closed:
            return
        self._stopping.set()
        loop = self._loop_thread
        if loop is not None and loop is not threading.current_thread() and loop.is_alive():
            self._wake()
            self._loop_exited.wait(timeout)
        with self._wake_lock:
            self._closed = True
        self._queue.put(None)
        self._teardown()

    def _teardown(self) -> None:
        self._closed = True
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        self._context.destroy(linger=0)

    def __enter__(self) -> InstrumentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["InstrumentServer", "SerializerUnavailable"]

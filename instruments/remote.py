"""A driver on the other end of a ZMQ socket: the wire protocol (v1) and its client, ``RemoteDriver``.

A real instrument lives on its own PC; ``instruments.server.InstrumentServer`` serves its driver
there and ``RemoteDriver`` is the same driver protocol on the campaign's side. The client's DEALER
socket talks to the server's ROUTER socket, one frame per message:

- request ``{v: 1, id, op, request, attempt_id, success}``: ``op`` is one of ``describe``, ``check``,
  ``measure``, ``recover``, ``stop``, ``health``, ``planning_model``; ``request`` (a
  ``MeasurementRequest``) goes with ``check`` and ``measure``, ``attempt_id`` with ``recover``,
  ``success`` with ``stop``;
- reply ``{v: 1, id, ok, heartbeat, result, error: {type, message} | None}``, ``id`` echoing the
  request's. While a ``measure`` runs the server sends ``heartbeat: true`` replies (one at once, then
  every ``heartbeat_interval_seconds``) so a long exposure is told apart from a dead server.

Serialisation is JSON by default (arrays as lists, NaN/inf as null — JSON has neither) or msgpack
(``serializer: msgpack``; arrays as raw little-endian bytes with dtype and shape, bit-exact and cheap
for a 4 MB detector image). The server answers in the format of the request. Both sides refuse
messages above ``max_message_bytes``.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import zmq
import zmq.auth
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, model_validator

from instruments.protocol import InstrumentLimitError, InstrumentNotReady, InstrumentUnreachable, planning_model_kind, planning_model_of_kind
from instruments.types import DataKey, Measurement, MeasurementRequest, Record, json_safe

log = logging.getLogger("labpilot.instruments.remote")

PROTOCOL_VERSION = 1
Op = Literal["describe", "check", "measure", "recover", "stop", "health", "planning_model"]
Serializer = Literal["json", "msgpack"]
DEFAULT_MAX_MESSAGE_BYTES = 64 * 2**20
"""64 MiB: a 4 MB float64 array as JSON text is ≈ 10 MB, so this leaves room for several."""
MAX_ID_LENGTH = 128


class RemoteProtocolError(RuntimeError):
    """A message broke the wire protocol: undecodable, oversized, wrong version or shape."""


class RemoteInstrumentError(RuntimeError):
    """The served driver raised; ``error_type`` is the server-side exception's class name."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Rebuilt from its two fields when it crosses a process boundary (Ray pickles task errors):
        # the default rebuilds from the one formatted message and fails, losing the reason.
        return (type(self), (self.error_type, self.message))


class SerializerUnavailable(RuntimeError):
    """The chosen serializer's package is not installed."""


# -- the envelopes -------------------------------------------------------------------------------


class RequestEnvelope(Record):
    """One request from client to server."""

    v: Literal[1] = PROTOCOL_VERSION
    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="message id, echoed by every reply")
    op: Op
    request: MeasurementRequest | None = Field(default=None, description="for check and measure")
    attempt_id: str | None = Field(default=None, min_length=1, description="for recover")
    success: bool | None = Field(default=None, description="for stop")

    @model_validator(mode="after")
    def _arguments(self) -> RequestEnvelope:
        if self.op in ("check", "measure") and self.request is None:
            raise ValueError(f"op {self.op!r} needs 'request'")
        if self.op == "recover" and self.attempt_id is None:
            raise ValueError("op 'recover' needs 'attempt_id'")
        if self.op == "stop" and self.success is None:
            raise ValueError("op 'stop' needs 'success'")
        return self


class ErrorInfo(Record):
    type: str = Field(description="exception class name: InstrumentLimitError, ProtocolError, or the driver's")
    message: str


class ReplyEnvelope(Record):
    """One reply from server to client; ``id`` is '' when the request's id could not be read."""

    v: Literal[1] = PROTOCOL_VERSION
    id: str = Field(max_length=MAX_ID_LENGTH)
    ok: bool
    heartbeat: bool = False
    result: Any = None
    error: ErrorInfo | None = None

    @model_validator(mode="after")
    def _error_iff_not_ok(self) -> ReplyEnvelope:
        if self.ok == (self.error is not None):
            raise ValueError("a reply has an error exactly when ok is false")
        return self


def envelope_message(envelope: BaseModel, result: Any = None) -> dict[str, Any]:
    """An envelope as a plain dict for a codec; ``result`` is added as given (already wire data)."""
    message = envelope.model_dump(mode="python", exclude={"result"})
    if isinstance(envelope, ReplyEnvelope):
        message["result"] = result
    return message


def validation_summary(exc: ValidationError) -> str:
    """'field.path: message; …' — short enough for one log line and one error reply."""
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "(message)"
        parts.append(f"{where}: {e['msg']}")
    more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return "; ".join(parts) + more


# -- serialisation ---------------------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        # Walking the lists for NaN costs ~100 ms on a 4 MB image: only when there is one.
        finite = obj.dtype.kind in "biu" or bool(np.isfinite(obj).all())
        return obj.tolist() if finite else json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} cannot be sent as JSON")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (non-finite numbers travel as null)")


class Codec(Protocol):
    """Bytes ↔ plain data (dicts, lists, str, numbers, numpy arrays) in one format."""

    name: Serializer

    def encode(self, message: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


class JsonCodec:
    name: Serializer = "json"

    def encode(self, message: Any) -> bytes:
        # allow_nan=False: a stray non-finite float is an error here, not invalid JSON on the wire.
        return json.dumps(message, default=_json_default, allow_nan=False, separators=(",", ":")).encode()

    def decode(self, data: bytes) -> Any:
        return json.loads(data, parse_constant=_reject_constant)


_NDARRAY_EXT = 1
_RAW_DTYPE_KINDS = "biuf"


class MsgpackCodec:
    name: Serializer = "msgpack"

    def __init__(self) -> None:
        self._msgpack = _import_msgpack()

    def _default(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray) and obj.dtype.kind in _RAW_DTYPE_KINDS:
            # Raw bytes, little-endian, with dtype and shape: no per-element encoding for big arrays.
            array = np.ascontiguousarray(obj, dtype=obj.dtype.newbyteorder("<"))
            header = [array.dtype.str, list(array.shape), array.tobytes()]
            return self._msgpack.ExtType(_NDARRAY_EXT, self._msgpack.packb(header, use_bin_type=True))
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, (datetime, date)):
            return obj.isoformat()
        if isinstance(obj, (set, frozenset)):
            return sorted(obj)
        raise TypeError(f"{type(obj).__name__} cannot be sent as msgpack")

    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code != _NDARRAY_EXT:
            raise ValueError(f"unknown msgpack extension type {code}")
        dtype_str, shape, raw = self._msgpack.unpackb(data, raw=False)
        dtype = np.dtype(dtype_str)
        if dtype.kind not in _RAW_DTYPE_KINDS:  # never object arrays from the wire
            raise ValueError(f"array dtype {dtype_str!r} is not allowed on the wire")
        if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ValueError(f"array shape {shape!r} is not a list of sizes")
        if len(raw) != math.prod(shape) * dtype.itemsize:
            raise ValueError(f"array of shape {shape} {dtype_str} needs {math.prod(shape) * dtype.itemsize} bytes, got {len(raw)}")
        # Copy: frombuffer over bytes is read-only, and analyses may work on the data in place.
        return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)

    def encode(self, message: Any) -> bytes:
        return self._msgpack.packb(message, default=self._default, use_bin_type=True)  # type: ignore[no-any-return]

    def decode(self, data: bytes) -> Any:
        return self._msgpack.unpackb(data, raw=False, ext_hook=self._ext_hook, strict_map_key=True)


def _import_msgpack() -> Any:
    try:
        import msgpack  # optional: only connections that ask for it need it
    except ImportError as exc:
        raise SerializerUnavailable(
            "serializer 'msgpack' needs the msgpack package, which is not installed: "
            "`pip install msgpack`, or use serializer: json"
        ) from exc
    return msgpack


def get_codec(serializer: str) -> Codec:
    """The codec of ``serializer`` ('json' or 'msgpack'); a clear error if msgpack is missing."""
    if serializer == "json":
        return JsonCodec()
    if serializer == "msgpack":
        return MsgpackCodec()
    raise ValueError(f"serializer: unknown {serializer!r}; use 'json' or 'msgpack'")


def detect_serializer(data: bytes) -> Serializer:
    """Which format a message is in: every JSON envelope is an object, so it starts with '{'."""
    return "json" if data[:1] in (b"{", b" ", b"\n", b"\t", b"\r") else "msgpack"


# -- wire forms of results -----------------------------------------------------------------------


def planning_model_to_wire(model: Any) -> dict[str, Any] | None:
    """``{"kind": "sas"|"xrd", "model": …}`` for a planning model that can cross the wire, else None."""
    if model is None:
        return None
    kind = planning_model_kind(model)
    if kind is not None:
        return {"kind": kind, "model": model.model_dump(mode="python")}
    log.warning("planning model of type %s cannot cross the wire; the client gets None", type(model).__name__)
    return None


def planning_model_from_wire(value: Any) -> Any:
    """The planning model rebuilt from its wire form; None for None or an unknown kind."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"kind", "model"}:
        raise RemoteProtocolError(f"planning_model: expected {{'kind', 'model'}}, got {type(value).__name__}")
    model = planning_model_of_kind(value["kind"], value["model"])
    if model is None:
        log.warning("planning model of unknown kind %r ignored", value["kind"])
    return model


_DESCRIBE = TypeAdapter(dict[str, DataKey])


# -- addresses and keys ----------------------------------------------------------------------------

_LOOPBACK_HOSTS = {"localhost", "::1", "[::1]"}


def is_loopback(address: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on 127.0.0.0/8, localhost or ::1 — reachable from this
    machine only, so an unauthenticated server there is exposed to local users alone."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        return False
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = rest.rsplit(";", 1)[-1]  # connect syntax "source;host:port": the destination decides
    host = host.rsplit(":", 1)[0] if ":" in host else host
    return host in _LOOPBACK_HOSTS or (host.startswith("127.") and all(p.isdigit() for p in host.split(".")))


def load_secret_certificate(path: str | Path, what: str) -> tuple[bytes, bytes]:
    """(public, secret) of a zmq certificate written by ``labpilot keys`` (NAME.key_secret)."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{what}: {file} does not exist (create a key pair with `labpilot keys NAME`)")
    mode = file.stat().st_mode
    if mode & 0o077:
        raise ValueError(
            f"{what}: {file} is readable by others (mode {mode & 0o777:o}); a secret key must be private: chmod 600 {file}"
        )
    public, secret = zmq.auth.load_certificate(file)
    if secret is None:
        raise ValueError(f"{what}: {file} holds only a public key; pass the NAME.key_secret file")
    return public, secret


def load_public_certificate(path: str | Path, what: str) -> bytes:
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{what}: {file} does not exist (the peer's NAME.key from `labpilot keys`)")
    public, _ = zmq.auth.load_certificate(file)
    return public


# -- the client --------------------------------------------------------------------------------------


class RemoteSettings(Record):
    """Settings of a ``kind: remote`` instrument: where its server is and how to talk to it."""

    address: str = Field(description='ZMQ endpoint of the instrument server, e.g. "tcp://10.0.0.7:5555" or "ipc:///run/x.sock"')
    request_timeout_seconds: float = Field(
        default=10.0, gt=0, description="seconds to wait for a reply (for measure: for its first heartbeat)"
    )
    heartbeat_timeout_seconds: float = Field(
        default=10.0, gt=0,
        description="seconds of silence during a measure after which the server counts as gone; must exceed the "
        "server's heartbeat interval (1 s by default)",
    )
    serializer: Serializer = Field(default="json", description="json, or msgpack (raw arrays; needs the msgpack package)")
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, ge=1024, description="largest request or reply, bytes")
    client_secret_key_file: str | None = Field(default=None, description="this client's NAME.key_secret (CURVE)")
    server_public_key_file: str | None = Field(default=None, description="the server's public NAME.key (CURVE)")

    @model_validator(mode="after")
    def _consistent(self) -> RemoteSettings:
        scheme = self.address.partition("://")[0]
        if "://" not in self.address or scheme not in ("tcp", "ipc", "inproc"):
            raise ValueError(f"address {self.address!r}: expected tcp://HOST:PORT, ipc://PATH or inproc://NAME")
        if (self.client_secret_key_file is None) != (self.server_public_key_file is None):
            raise ValueError("client_secret_key_file and server_public_key_file go together (CURVE needs both)")
        if self.client_secret_key_file is None and not is_loopback(self.address):
            raise ValueError(
                f"address {self.address!r} is not loopback: a server there only accepts CURVE clients; set "
                "client_secret_key_file and server_public_key_file"
            )
        return self


class RemoteDriver:
    """The driver protocol (``RecoverableDriver`` and ``PlanningModelDriver`` too) over ZMQ.

    Thread-safe: each calling thread gets its own DEALER socket (the Ray instrument service calls
    ``check`` while a ``measure`` runs in another thread). A call that times out raises
    ``InstrumentUnreachable`` and throws its socket away, so a late reply to it dies with the socket
    and cannot answer the next call; replies are also matched to their request by id.
    """

    #: The server checks each request and its driver's records before measuring (``instruments/server.py``):
    #: the instrument service need not ask again over the network.
    guards_measure = True

    def __init__(self, name: str, settings: RemoteSettings) -> None:
        self.name = name
        self.settings = settings
        self._codec = get_codec(settings.serializer)  # fails now, not at the first measurement
        self._curve: tuple[bytes, bytes, bytes] | None = None
        if settings.client_secret_key_file is not None and settings.server_public_key_file is not None:
            public, secret = load_secret_certificate(settings.client_secret_key_file, "client_secret_key_file")
            server = load_public_certificate(settings.server_public_key_file, "server_public_key_file")
            self._curve = (public, secret, server)
        self._context = zmq.Context()
        self._local = threading.local()
        self._sockets: set[zmq.Socket[bytes]] = set()
        self._lock = threading.Lock()
        self._closed = False

    # -- the driver protocol ---------------------------------------------------------------------
    def describe(self) -> dict[str, DataKey]:
        return _DESCRIBE.validate_python(self._call("describe"))

    def check(self, request: MeasurementRequest) -> None:
        """Raises ``InstrumentLimitError`` with the served driver's message when it refuses."""
        self._call("check", request=request)

    def measure(self, request: MeasurementRequest) -> Measurement:
        """Measure on the server. Times out (``InstrumentUnreachable``) when no reply or heartbeat
        arrives in time: the outcome is then unknown, and ``recover(attempt_id)`` reconciles it."""
        return Measurement.model_validate(self._call("measure", request=request))

    def recover(self, attempt_id: str) -> Measurement | None:
        result = self._call("recover", attempt_id=attempt_id)
        return None if result is None else Measurement.model_validate(result)

    def stop(self, success: bool) -> None:
        self._call("stop", success=success)

    def planning_model(self) -> Any:
        """The served driver's planning model (SAS or XRD), rebuilt here; None if it has none."""
        return planning_model_from_wire(self._call("planning_model"))

    def health(self) -> dict[str, Any]:
        """The server's state: name, busy, measured, queued, … (answered even during a measure)."""
        result = self._call("health")
        if not isinstance(result, dict):
            raise RemoteProtocolError(f"health: expected an object, got {type(result).__name__}")
        return result

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for sock in self._sockets:
                sock.close(linger=0)
            self._sockets.clear()
        self._context.term()

    def __enter__(self) -> RemoteDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport --------------------------------------------------------------------------------
    def _socket(self) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] | None = getattr(self._local, "socket", None)
        if sock is not None:
            return sock
        with self._lock:
            if self._closed:
                raise RuntimeError(f"remote instrument {self.name!r} is closed")
            sock = self._context.socket(zmq.DEALER)
            self._sockets.add(sock)
        sock.linger = 0
        if self._curve is not None:
            public, secret, server = self._curve
            sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = public, secret, server
        sock.connect(self.settings.address)
        self._local.socket = sock
        return sock

    def _discard_socket(self) -> None:
        sock = getattr(self._local, "socket", None)
        if sock is None:
            return
        self._local.socket = None
        with self._lock:
            self._sockets.discard(sock)
        sock.close(linger=0)

    def _call(self, op: Op, **fields: Any) -> Any:
        envelope = RequestEnvelope(id=uuid.uuid4().hex, op=op, **fields)
        payload = self._codec.encode(envelope_message(envelope))
        limit = self.settings.max_message_bytes
        if len(payload) > limit:
            raise RemoteProtocolError(f"{op} request is {len(payload)} bytes, above max_message_bytes={limit}")
        sock = self._socket()
        answered = False
        try:
            sock.send(payload)
            timeout = self.settings.request_timeout_seconds
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sock.poll(max(1, int(remaining * 1000))):
                    if time.monotonic() < deadline:
                        continue
                    raise InstrumentUnreachable(self._silence(op, envelope, timeout))
                reply = self._decode(sock.recv_multipart(), op)
                if reply.id not in (envelope.id, ""):
                    log.debug("%s: dropped a stale reply %s (waiting for %s)", self.name, reply.id, envelope.id)
                    continue
                if reply.heartbeat and reply.id == envelope.id:
                    timeout = self.settings.heartbeat_timeout_seconds
                    deadline = time.monotonic() + timeout
                    continue
                answered = True
                if reply.ok:
                    return reply.result
                raise self._error(reply.error, op)  # type: ignore[arg-type]
        finally:
            if not answered:  # a late reply must not reach the next call: it dies with this socket
                self._discard_socket()

    def _silence(self, op: str, envelope: RequestEnvelope, timeout: float) -> str:
        text = f"instrument server {self.settings.address} ({self.name}) did not answer {op} within {timeout:g} s"
        if op == "measure" and envelope.request is not None:
            text += f"; the outcome of attempt {envelope.request.attempt_id} is unknown (recover it when the server is back)"
        if self._curve is not None:
            text += "; a server that does not authorise this client's key never answers"
        return text

    def _decode(self, frames: list[bytes], op: str) -> ReplyEnvelope:
        if len(frames) != 1:
            raise RemoteProtocolError(f"{op}: reply has {len(frames)} frames, expected 1")
        data = frames[0]
        if len(data) > self.settings.max_message_bytes:
            raise RemoteProtocolError(
                f"{op}: reply is {len(data)} bytes, above max_message_bytes={self.settings.max_message_bytes}"
            )
        try:
            message = self._codec.decode(data)
        except Exception as exc:  # noqa: BLE001 — any decoder failure is the same protocol error
            message = self._fallback_decode(data)
            if message is None:
                raise RemoteProtocolError(f"{op}: undecodable {self._codec.name} reply ({exc}): {data[:80]!r}") from None
        try:
            return ReplyEnvelope.model_validate(message)
        except ValidationError as exc:
            raise RemoteProtocolError(f"{op}: invalid reply: {validation_summary(exc)}") from None

    def _fallback_decode(self, data: bytes) -> Any:
        # A server that cannot speak our format says so in JSON: surface its message, not a decode error.
        if self._codec.name == "json" or detect_serializer(data) != "json":
            return None
        try:
            return JsonCodec().decode(data)
        except ValueError:
            return None

    def _error(self, error: ErrorInfo, op: str) -> Exception:
        if error.type == "InstrumentLimitError":
            return InstrumentLimitError(error.message)
        if error.type == "InstrumentNotReady":
            return InstrumentNotReady(error.message)
        if error.type == "ProtocolError":
            return RemoteProtocolError(f"{op} refused by the server: {error.message}")
        return RemoteInstrumentError(error.type, error.message)


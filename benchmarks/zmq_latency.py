"""Round trip of a ``measure`` through the ZMQ instrument server, next to raw pyzmq REQ/REP.

For two payloads — a trivial driver's scalar measurement and a 4 MB float64 detector image
(512 × 1024) — and both serializers (JSON, msgpack): the median and 95th-percentile latency of one
``RemoteDriver.measure`` against an ``InstrumentServer`` in another process, and its throughput
(sequential calls per second, MB/s), next to a raw REQ/REP round trip that carries the *same reply
bytes* (a tiny request, the encoded reply back; no decoding) — the cost of the transport alone.
The difference is labpilot's overhead; to say where it goes, the in-process cost of encoding the
reply (server) and of decoding + validating it (client) is measured too.

    python benchmarks/zmq_latency.py [--n 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from instruments.remote import ReplyEnvelope, RemoteDriver, RemoteSettings, envelope_message, get_codec  # noqa: E402
from instruments.server import InstrumentServer  # noqa: E402
from instruments.types import DataKey, Measurement, MeasurementRequest, Timing  # noqa: E402

PAYLOADS = ("small", "4MB")
SERIALIZERS = ("json", "msgpack")
IMAGE_SHAPE = (512, 1024)  # 524 288 float64 = 4 MiB


class BenchDriver:
    """Returns a fixed measurement at once: a scalar ('small') or a 4 MB image ('4MB')."""

    def __init__(self, payload: str) -> None:
        self.name = f"bench-{payload}"
        rng = np.random.default_rng(0)
        self.data = {"value": np.array(0.5)} if payload == "small" else {"image": rng.normal(size=IMAGE_SHAPE)}

    def describe(self) -> dict[str, DataKey]:
        key = next(iter(self.data))
        return {key: DataKey(dtype="number" if key == "value" else "array", shape=list(self.data[key].shape), units="a.u.")}

    def check(self, request: MeasurementRequest) -> None: ...

    def measure(self, request: MeasurementRequest) -> Measurement:
        return Measurement(attempt_id=request.attempt_id, instrument=self.name, params=request.params, data=self.data,
                           timing=Timing(exposure_seconds=0.0))

    def stop(self, success: bool) -> None: ...


def _reply_bytes(payload: str, serializer: str) -> bytes:
    m = BenchDriver(payload).measure(MeasurementRequest(attempt_id="a", params={"x": 1.0}))
    return get_codec(serializer).encode(envelope_message(ReplyEnvelope(id="0" * 32, ok=True), m.model_dump(mode="python")))


# -- the two servers, each in its own process ----------------------------------------------------


def _serve_labpilot(payload: str) -> None:
    # A small cache: every call is a new attempt, and 4 MB results must not pile up in memory.
    server = InstrumentServer(BenchDriver(payload), "tcp://127.0.0.1:*", serializer="msgpack", max_cached_results=2)
    print(json.dumps({"address": server.address}), flush=True)
    server.serve_until_interrupted()


def _serve_raw(payload: str) -> None:
    replies = {b"j": _reply_bytes(payload, "json"), b"m": _reply_bytes(payload, "msgpack")}
    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    port = rep.bind_to_random_port("tcp://127.0.0.1")
    print(json.dumps({"address": f"tcp://127.0.0.1:{port}"}), flush=True)
    try:
        while True:
            rep.send(replies[rep.recv()], copy=False)
    except KeyboardInterrupt:
        pass
    finally:
        ctx.destroy(linger=0)


def _start(kind: str, payload: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, __file__, f"--serve-{kind}", payload], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], 60)
    if not readable:
        proc.kill()
        raise RuntimeError(f"{kind} server did not start")
    return proc, json.loads(proc.stdout.readline())["address"]


# -- measuring --------------------------------------------------------------------------------------


def _stats(seconds: list[float], n_bytes: int) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    total = sum(seconds)
    return {"median_ms": statistics.median(ms), "p95_ms": ms[min(len(ms) - 1, int(0.95 * len(ms)))],
            "calls_per_second": len(seconds) / total, "mb_per_second": n_bytes * len(seconds) / total / 1e6, "n": len(seconds)}


def _time_labpilot(address: str, serializer: str, n: int, warmup: int) -> list[float]:
    seconds = []
    with RemoteDriver("bench", RemoteSettings(address=address, serializer=serializer)) as remote:  # type: ignore[arg-type]
        for i in range(warmup + n):
            request = MeasurementRequest(attempt_id=f"{serializer}-{i}", params={"x": 1.0})
            started = time.perf_counter()
            remote.measure(request)
            if i >= warmup:
                seconds.append(time.perf_counter() - started)
    return seconds


def _time_health(address: str, serializer: str, n: int, warmup: int) -> list[float]:
    """``health``: answered inline by the socket loop — the envelope and transport without the
    measurement machinery (worker thread, accepted-heartbeat, result bookkeeping)."""
    seconds = []
    with RemoteDriver("bench", RemoteSettings(address=address, serializer=serializer)) as remote:  # type: ignore[arg-type]
        for i in range(warmup + n):
            started = time.perf_counter()
            remote.health()
            if i >= warmup:
                seconds.append(time.perf_counter() - started)
    return seconds


def _time_raw(address: str, serializer: str, n: int, warmup: int) -> list[float]:
    ctx = zmq.Context()
    req = ctx.socket(zmq.REQ)
    req.connect(address)
    marker = b"j" if serializer == "json" else b"m"
    seconds = []
    try:
        for i in range(warmup + n):
            started = time.perf_counter()
            req.send(marker)
            req.recv(copy=False)
            if i >= warmup:
                seconds.append(time.perf_counter() - started)
    finally:
        ctx.destroy(linger=0)
    return seconds


def _codec_costs(payload: str, serializer: str, n: int) -> tuple[float, float]:
    """In-process ms per reply: encode (server side), decode + validate into a Measurement (client side)."""
    codec = get_codec(serializer)
    m = BenchDriver(payload).measure(MeasurementRequest(attempt_id="a", params={"x": 1.0}))
    started = time.perf_counter()
    for _ in range(n):
        data = codec.encode(envelope_message(ReplyEnvelope(id="0" * 32, ok=True), m.model_dump(mode="python")))
    encode = (time.perf_counter() - started) / n
    started = time.perf_counter()
    for _ in range(n):
        Measurement.model_validate(ReplyEnvelope.model_validate(codec.decode(data)).result)
    decode = (time.perf_counter() - started) / n
    return encode * 1000, decode * 1000


def run(n_small: int) -> list[dict[str, Any]]:
    rows = []
    for payload in PAYLOADS:
        counts = {"json": n_small if payload == "small" else max(10, n_small // 100),
                  "msgpack": n_small if payload == "small" else max(20, n_small // 20)}
        servers = {kind: _start(kind, payload) for kind in ("labpilot", "raw")}
        try:
            for serializer in SERIALIZERS:
                n, warmup = counts[serializer], max(3, counts[serializer] // 20)
                size = len(_reply_bytes(payload, serializer))
                encode, decode = _codec_costs(payload, serializer, max(10, n // 10))
                paths = [("labpilot measure", _time_labpilot), ("raw REQ/REP", _time_raw)]
                if payload == "small":
                    paths.insert(1, ("labpilot health", _time_health))
                for kind, timer in paths:
                    address = servers["labpilot" if kind.startswith("labpilot") else "raw"][1]
                    row = {"payload": payload, "serializer": serializer, "path": kind, "reply_bytes": size,
                           **_stats(timer(address, serializer, n, warmup), size)}
                    if kind == "labpilot health":
                        row["reply_bytes"] = row["mb_per_second"] = None
                    if kind == "labpilot measure":
                        row.update(encode_ms=encode, decode_validate_ms=decode)
                    rows.append(row)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(10)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per small-payload case (4 MB cases run fewer)")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON object")
    parser.add_argument("--serve-labpilot", choices=PAYLOADS, help=argparse.SUPPRESS)
    parser.add_argument("--serve-raw", choices=PAYLOADS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_labpilot:
        return _serve_labpilot(args.serve_labpilot)
    if args.serve_raw:
        return _serve_raw(args.serve_raw)
    rows = run(args.n)
    if args.json:
        print(json.dumps({"rows": rows}, indent=1))
        return
    table = Table("payload", "serializer", "path", "reply bytes", "median ms", "p95 ms", "calls/s", "MB/s",
                  "encode ms", "decode+validate ms")
    for r in rows:
        table.add_row(r["payload"], r["serializer"], r["path"], f"{r['reply_bytes']:,}" if r["reply_bytes"] else "≈200", f"{r['median_ms']:.3f}",
                      f"{r['p95_ms']:.3f}", f"{r['calls_per_second']:,.0f}", f"{r['mb_per_second']:,.1f}" if r["mb_per_second"] else "",
                      f"{r['encode_ms']:.3f}" if "encode_ms" in r else "", f"{r['decode_validate_ms']:.3f}" if "encode_ms" in r else "")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()

"""CPU and wall per store write of one measurement (decision carrying the analysis, measured), no loop."""
import time, tempfile, sys, statistics
import numpy as np
from agent.store import Store, ProposedAttempt, TargetEvaluation, AnalysedRecord, Document
from analysis.protocol import Estimate, Interpretation
from instruments.types import Measurement, Timing
from sqlalchemy import text
url = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "sqlite" else f"sqlite:///{tempfile.mkdtemp()}/m.db"
s = Store(url)
_cm = {"cpu": 0.0, "wall": 0.0, "n": 0}
_orig_commit = s.engine.dialect.do_commit
def _timed_commit(dbapi_conn):
    c, w = time.process_time(), time.perf_counter()
    _orig_commit(dbapi_conn)
    _cm["cpu"] += time.process_time() - c; _cm["wall"] += time.perf_counter() - w; _cm["n"] += 1
s.engine.dialect.do_commit = _timed_commit
import uuid
cid = "w-" + uuid.uuid4().hex[:8]
s.create_campaign(cid, "w", {}, 0, "/tmp", {})
N = int(sys.argv[2]) if len(sys.argv) > 2 else 300
t = {"decision": [], "measured": [], "empty tx": [], "decision wall": [], "measured wall": [], "empty wall": []}
prev = None
for i in range(N):
    aid = f"{cid}-{i:05d}"
    analysed = []
    if prev is not None:
        interp = Interpretation(attempt_id=prev, sample_id=prev, analysis="scalar", estimates={"yield": Estimate(value=0.5, sigma=0.01)}, valid=True)
        analysed = [AnalysedRecord(interp, TargetEvaluation(i, 0.0, 0.0, {"t": {"value": 1.0, "goal": 0.5, "met": False}}, False),
                                   [Document("event", {"uid": f"i{aid}", "data": {"yield": 0.5}}, "interpretations")])]
    c, w = time.process_time(), time.perf_counter()
    s.record_decision(cid, i, policy="sobol", fallback=False, error=None, seed=0, n_history=i, n_pending=0,
                      reasons=[{"phase": "space-filling"}], decision_seconds=0.0, versions={"a": "1"},
                      attempts=[ProposedAttempt(aid, i, {"x": 0.5}, path=("validated", "dispatched"), instrument="fast")],
                      documents=[Document("event", {"uid": f"d{aid}", "data": {"p": 1}}, "decisions")], analysed=analysed)
    t["decision"].append(time.process_time() - c); t["decision wall"].append(time.perf_counter() - w)
    m = Measurement(attempt_id=aid, instrument="fast", params={"x": 0.5}, data={"yield": np.array(0.3)}, sigma={"yield": np.array(0.01)},
                    timing=Timing(exposure_seconds=0, motion_seconds=0, overhead_seconds=0))
    c, w = time.process_time(), time.perf_counter()
    s.record_measurement(cid, m, documents=[Document("event", {"uid": f"m{aid}", "data": {"y": 0.3}}, "primary")], synchronous=False)
    t["measured"].append(time.process_time() - c); t["measured wall"].append(time.perf_counter() - w)
    c, w = time.process_time(), time.perf_counter()
    with s.engine.begin() as conn:
        pass
    t["empty tx"].append(time.process_time() - c); t["empty wall"].append(time.perf_counter() - w)
    prev = aid
print("commits", _cm["n"], "cpu ms each", round(_cm["cpu"] / _cm["n"] * 1000, 3), "wall ms each", round(_cm["wall"] / _cm["n"] * 1000, 3))
with s.engine.connect() as conn:
    print("synchronous", conn.exec_driver_sql("PRAGMA synchronous").scalar() if conn.dialect.name == "sqlite" else conn.exec_driver_sql("show synchronous_commit").scalar())
print(url.split(":")[0], {k: round(sum(v) / N * 1000, 3) for k, v in t.items()}, "ms mean")

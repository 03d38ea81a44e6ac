"""Count SQL statements and commits per measurement, and cProfile the in-process loop."""
import asyncio, cProfile, pstats, sys, tempfile, time, collections
sys.path.insert(0, "benchmarks")  # run from the repository root
import orchestration_overhead as oo
from sqlalchemy import event
from agent.campaign import CampaignRunner, new_campaign_id
from agent.config import parse_campaign
from agent.store import Store

try:
    from agent.store import raw as _raw
    _orig_call = _raw.RawStatement.__call__
    RAW = collections.Counter()
    def _counted(self, conn, params):
        RAW["statements"] += 1
        sql = str(self.statement.compile(dialect=conn.dialect)).split()
        RAW[(sql[0] + " " + (sql[2] if sql[0] == "INSERT" else sql[1] if sql[0] == "UPDATE" else "")) + " (raw)"] += 1
        return _orig_call(self, conn, params)
    _raw.RawStatement.__call__ = _counted
except ImportError:
    RAW = collections.Counter()

def run(url, n, profile=False):
    RAW.clear()
    tmp = tempfile.mkdtemp()
    config = parse_campaign({**oo.campaign(n, tmp), "in_process": True})
    store = Store(url)
    counts = collections.Counter()
    kinds = collections.Counter()
    @event.listens_for(store.engine, "before_cursor_execute")
    def _s(conn, cursor, statement, params, context, executemany):
        counts["statements"] += 1
        kinds[statement.split()[0] + " " + (statement.split()[2] if statement.split()[0] in ("INSERT","DELETE") else statement.split()[1] if statement.split()[0]=="UPDATE" else "")] += 1
    @event.listens_for(store.engine, "commit")
    def _c(conn):
        counts["commits"] += 1
    runner = CampaignRunner(config, store, new_campaign_id(config.name))
    p = cProfile.Profile() if profile else None
    t, c = time.perf_counter(), time.process_time()
    if p: p.enable()
    asyncio.run(runner.run())
    if p: p.disable()
    t, c = time.perf_counter() - t, time.process_time() - c
    store.close()
    counts["statements"] += RAW.pop("statements", 0)
    kinds.update(RAW)
    print(url.split(':')[0], f"n={n} wall {t/n*1000:.2f} ms cpu {c/n*1000:.2f} ms/meas (whole run incl. startup)",
          {k: round(v / n, 2) for k, v in counts.items()})
    for k, v in kinds.most_common(25): print(f"   {v/n:6.2f} {k}")
    if p:
        pstats.Stats(p).sort_stats("cumulative").print_stats(45)
        pstats.Stats(p).sort_stats("tottime").print_stats(30)

if __name__ == "__main__":
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    tmp = tempfile.mkdtemp()
    urls = {"sqlite": f"sqlite:///{tmp}/p.db", "pg": "postgresql+psycopg://postgres@127.0.0.1:5432/test"}
    run(urls["sqlite"], 20)  # warm-up
    for which in sys.argv[1].split(","):
        run(urls[which], n, profile="prof" in sys.argv)

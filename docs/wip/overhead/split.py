"""Per-measurement time inside the store's writes vs the whole loop (no profiler)."""
import asyncio, sys, tempfile, time, collections
sys.path.insert(0, "benchmarks")  # run from the repository root
import orchestration_overhead as oo
from agent.campaign import CampaignRunner, new_campaign_id
from agent.config import parse_campaign
from agent.store import Store
import agent.store.store as ss

acc = collections.Counter()
orig = ss.Store._write_core
def timed(self, what, action, **kw):
    t, c = time.perf_counter(), time.process_time()
    try: return orig(self, what, action, **kw)
    finally:
        key = what.split(" of ")[0].split(" attempt")[0]
        acc[key + " wall"] += time.perf_counter() - t; acc[key + " cpu"] += time.process_time() - c
ss.Store._write_core = timed

def run(url, n):
    acc.clear()
    tmp = tempfile.mkdtemp()
    config = parse_campaign({**oo.campaign(n, tmp), "in_process": True})
    store = Store(url)
    runner = CampaignRunner(config, store, new_campaign_id(config.name))
    t, c = time.perf_counter(), time.process_time()
    asyncio.run(runner.run())
    t, c = time.perf_counter() - t, time.process_time() - c
    store.close()
    print(url.split(':')[0], f"n={n} wall {t/n*1000:.2f} cpu {c/n*1000:.2f} ms/meas")
    for k, v in sorted(acc.items()):
        if v / n > 0.01e-3: print(f"   {v/n*1000:6.3f} ms {k}")

n = int(sys.argv[2]) if len(sys.argv) > 2 else 400
tmp = tempfile.mkdtemp()
urls = {"sqlite": f"sqlite:///{tmp}/p.db", "pg": "postgresql+psycopg://postgres@127.0.0.1:5432/test"}
run(urls["sqlite"], 20)
for which in sys.argv[1].split(","):
    run(urls[which], n)

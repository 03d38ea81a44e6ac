"""`labpilot bench sas|xrd --samples N` without Ray (its node timed out starting on this overloaded
machine): the same draw_family / run_one / summarise / write, two worker processes, and every
finished campaign appended to <out>/<name>_runs.jsonl as it ends (a run cut short keeps its samples)."""
import importlib, json, sys, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

name, n, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
module = importlib.import_module(f"agent.bench.{name}")
out.mkdir(parents=True, exist_ok=True)
log = out / f"{name}_runs.jsonl"
t0 = time.time()
results = []
with ProcessPoolExecutor(max_workers=2) as pool:
    futures = [pool.submit(module.run_one, s, p, module.BUDGET_SECONDS) for s in module.draw_family(n, 0) for p in module.POLICIES]
    for future in as_completed(futures):
        r = future.result()
        results.append(r)
        with log.open("a") as fh:
            fh.write(json.dumps({**r, "wall_s": round(time.time() - t0)}) + "\n")
results.sort(key=lambda r: (r["sample"], list(module.POLICIES).index(r["policy"])))
summary = module.summarise(results, n)
module.write(summary, results, out)
print(json.dumps(summary, indent=1, default=str))
print("wall seconds", round(time.time() - t0))

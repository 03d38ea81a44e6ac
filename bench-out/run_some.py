"""Some (sample, policy) campaigns of `labpilot bench sas|xrd` (same draw_family / run_one), two
worker processes, each finished campaign appended to <out>/<name>_some.jsonl as it ends."""
import importlib, json, sys, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

name, n, policy, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
indices = [int(i) for i in sys.argv[5].split(",")]
module = importlib.import_module(f"agent.bench.{name}")
family = module.draw_family(n, 0)
t0 = time.time()
with ProcessPoolExecutor(max_workers=2) as pool:
    futures = [pool.submit(module.run_one, family[i], policy, module.BUDGET_SECONDS) for i in indices]
    for future in as_completed(futures):
        with (out / f"{name}_some.jsonl").open("a") as fh:
            fh.write(json.dumps({**future.result(), "wall_s": round(time.time() - t0)}) + "\n")

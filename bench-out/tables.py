"""Tables of the README's issue-14 section from the JSONL files of bench-out/ (runs as they ended)."""
import json, statistics, sys
from pathlib import Path
from agent.bench import sas, xrd

def load(path):
    return [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()] if Path(path).exists() else []

sas_runs = {r["sample"]: r for r in load("bench-out/sas_quick_adaptive.jsonl") + load("bench-out/sas_some.jsonl") if r["policy"] == "adaptive"}
print("SAS adaptive, samples", sorted(sas_runs))
for s, r in sorted(sas_runs.items()):
    print(s, r["true_model"], r["best_model"], r["status"], r["success"], r["instrument_seconds"])
times = [r["instrument_seconds"] for r in sas_runs.values()]
print("median all", statistics.median(times), "fixed/adaptive", 7800 / statistics.median(times))
solv = [r for r in sas_runs.values() if r["success"]]
print("median solvable(solved)", statistics.median([r["instrument_seconds"] for r in solv]), "n", len(solv))
uns = [r for r in sas_runs.values() if not r["success"]]
print("unsolved", [(r["sample"], r["status"], r["instrument_seconds"]) for r in uns])
print("false unreachable", sum(r["status"] == "unreachable" for r in solv), "/", len(solv))
print("success", len(solv) / len(sas_runs))

x = load("bench-out/xrd/xrd_runs.jsonl")
if x:
    done = sorted({r["sample"] for r in x if sum(q["sample"] == r["sample"] for q in x) == 3})
    rows = [r for r in x if r["sample"] in done]
    print("XRD complete samples", done)
    summary = xrd.summarise(rows, len(done))
    for name, row in summary["policies"].items():
        print(name, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if k != "reliability"})
    print(json.dumps(summary["goals"], default=str))
    for r in x:
        print(r["sample"], r["policy"], r["true_set"], r["reported_set"], round(r["p_best"] or 0, 3), r["status"], round(r["instrument_seconds"]), r["out_of_library"])

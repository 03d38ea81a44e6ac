import sys, json, time
from benchmarks.xrd_polymorph_honesty import load_case, CAMPAIGN, run_id
case = load_case(CAMPAIGN)
deadline = time.monotonic() + float(sys.argv[2])
for i in map(int, sys.argv[1].split(",")):
    if time.monotonic() > deadline: break
    r = run_id((case, i)); r["right"] = r["best"] == case["truth"]
    print(json.dumps(r), flush=True)

"""The local Ray: every server on loopback, token authentication on, nothing left running after."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.timeout(180), pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")]

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh process: this test session's own Ray may be up already.
SCRIPT = r"""
import json, os, ray
from agent.runtime import ray_runtime

def listening():
    # inode -> "address:port" of every listening TCP socket (state 0A) on the machine
    out = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(name).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A":
                out[f[9]] = f[1]
    return out

def tree(pid):
    pids, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        try:
            kids = [int(x) for x in open(f"/proc/{p}/task/{p}/children").read().split()]
        except OSError:
            kids = []
        for k in kids:
            if k not in pids:
                pids.add(k); frontier.append(k)
    return pids

with ray_runtime():
    @ray.remote
    class Probe:
        def pid(self):
            return os.getpid()
    probe = Probe.remote(); ray.get(probe.pid.remote())
    from ray._raylet import AuthenticationMode, get_authentication_mode
    node = ray._private.worker._global_node
    pids = set().union(*(tree(i.process.pid) for infos in node.all_processes.values() for i in infos), tree(os.getpid()))
    sockets = listening()
    mine = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inode = target[8:-1]
                    if inode in sockets:
                        mine.add(sockets[inode])
        except OSError:
            pass
    print(json.dumps({"addresses": sorted(mine), "token": get_authentication_mode() == AuthenticationMode.TOKEN,
                      "node_ip": ray.util.get_node_ip_address(), "raylet": node.all_processes and True}))
"""

LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def test_a_local_ray_listens_on_loopback_only_with_token_authentication() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["addresses"], "no listening socket found: the probe itself is broken"
    hosts = {address.split(":")[0] for address in found["addresses"]}
    assert hosts <= LOOPBACK, f"Ray servers listen beyond loopback: {found['addresses']}"
    assert found["token"] and found["node_ip"] == "127.0.0.1"


# Ray started in the background (``labpilot run`` / ``resume``): the node must outlive the thread that
# started it (Ray ties its GCS and raylet to that thread), and a local node has no dashboard server,
# autoscaler monitor or log monitor.
BACKGROUND = r"""
import json, os, time, ray
from agent.runtime import ray_runtime, wait_for_ray

with ray_runtime(background=True):
    wait_for_ray()
    time.sleep(1.0)  # the start's thread has returned from ray.init long since
    @ray.remote
    class Probe:
        def pid(self):
            return os.getpid()
    worker = ray.get(Probe.options(num_cpus=0).remote().pid.remote())
    node = ray._private.worker._global_node
    kinds = sorted(k for k, infos in node.all_processes.items() if infos)
    ray_pids = [i.process.pid for infos in node.all_processes.values() for i in infos] + [worker]
print(json.dumps({"kinds": kinds, "pids": ray_pids, "up_after": ray.is_initialized()}))
"""


def test_ray_started_in_the_background_works_without_the_unused_head_processes_and_ends() -> None:
    import psutil

    run = subprocess.run([sys.executable, "-c", BACKGROUND], cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"gcs_server", "raylet"} <= set(found["kinds"])
    assert not {"dashboard", "monitor", "log_monitor"} & set(found["kinds"]), found["kinds"]
    assert found["up_after"] is False
    alive = [p for p in found["pids"] if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"Ray processes left running: {alive}"


def test_a_failed_background_start_is_raised_where_ray_is_first_needed() -> None:
    script = r"""
from agent.runtime import ray_runtime, wait_for_ray
try:
    with ray_runtime(num_cpus=-1, background=True):  # refused by ray.init
        wait_for_ray()
    print("not raised")
except ValueError as exc:
    print("raised", exc)
"""
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert "raised" in run.stdout.split()[:1], (run.stdout, run.stderr[-2000:])

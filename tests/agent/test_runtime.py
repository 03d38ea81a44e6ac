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

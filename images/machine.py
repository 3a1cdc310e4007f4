"""This machine, made ready for kind: a Docker engine whose ``--privileged`` containers start here, and
walls that keep every container and pod inside the machine.

- A sandbox without CAP_SYS_RESOURCE in its bounding set cannot start a privileged container with plain
  runc ("unable to apply caps: operation not permitted"): dockerd is given ``runc-drop-sys-resource``
  (beside this file) as its default runtime (dockerd ``--add-runtime`` / ``--default-runtime``, Docker
  20.10 "dockerd" reference).
- Safety: packets from any Docker bridge (``docker0``, ``br-*``: kind's network is one) to the uplink are
  dropped in the ``DOCKER-USER`` chain, the chain Docker keeps for the administrator's rules and evaluates
  before its own (docs.docker.com "Packet filtering and firewalls", Docker 20.10), for IPv4 and IPv6; the
  clusters' pod and Service ranges are blackholed on the host, so that nothing addressed to them is ever
  handed to the default route.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WRAPPER = HERE / "runc-drop-sys-resource"
RUNTIME = "runc-drop-sys-resource"
CAP_SYS_RESOURCE = 24
BRIDGES = ("docker0", "br-+")
# What the kind configs of clusters/ give pods and Services (kind's default service subnet: 10.96.0.0/16).
CLUSTER_RANGES = ("192.168.0.0/16", "10.96.0.0/16")
# RFC 5737 TEST-NET-3: an address outside this machine that no one may own; the check sends to it only
# once the DROP rules are in place, and proves by their counters that they took the packets.
OUTSIDE_PROBE = "203.0.113.1"


class MachineError(RuntimeError):
    """The machine cannot run kind as set up: one line saying what and how to fix it."""


def _run(argv: list[str], timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise MachineError(f"{argv[0]} not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise MachineError(f"`{' '.join(argv)}` did not finish within {timeout:g}s") from None
    if check and result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise MachineError(f"`{' '.join(argv)}` exited {result.returncode}: {tail[0]}")
    return result


def lacks_sys_resource(status: Path = Path("/proc/self/status")) -> bool:
    """True where this process's bounding set has no CAP_SYS_RESOURCE (a sandbox): plain runc then
    cannot start privileged containers."""
    for line in status.read_text().splitlines():
        if line.startswith("CapBnd:"):
            return not (int(line.split()[1], 16) >> CAP_SYS_RESOURCE) & 1
    return False


def docker_running() -> bool:
    return shutil.which("docker") is not None and _run(["docker", "info"], 20, check=False).returncode == 0


def default_runtime() -> str:
    return _run(["docker", "info", "--format", "{{.DefaultRuntime}}"], 20).stdout.strip()


def ensure_docker(state_dir: Path) -> str:
    """A running Docker engine able to start privileged containers here; starts dockerd when none runs.
    Returns what was done, for the progress line."""
    needs_wrapper = lacks_sys_resource()
    if docker_running():
        if needs_wrapper and default_runtime() != RUNTIME:
            raise MachineError(
                f"the running dockerd uses runtime {default_runtime()!r}, whose privileged containers cannot "
                f"start here (no CAP_SYS_RESOURCE): stop it, and this command starts one with {WRAPPER.name}"
            )
        return "running"
    if shutil.which("dockerd") is None:
        raise MachineError("no Docker engine: install one (Debian: apt-get install docker.io)")
    state_dir.mkdir(parents=True, exist_ok=True)
    argv = ["dockerd"]
    if needs_wrapper:
        # dockerd runs the wrapper for the whole life of the engine: a copy outside the checkout.
        wrapper = state_dir / WRAPPER.name
        shutil.copy2(WRAPPER, wrapper)
        wrapper.chmod(0o755)
        argv += ["--add-runtime", f"{RUNTIME}={wrapper}", "--default-runtime", RUNTIME]
    log = (state_dir / "dockerd.log").open("ab")
    subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not docker_running():
        if time.monotonic() > deadline:
            raise MachineError(f"dockerd did not answer within 60 s (see {state_dir / 'dockerd.log'})")
        time.sleep(1)
    return "started" + (f" (runtime {RUNTIME})" if needs_wrapper else "")


def uplinks() -> list[str]:
    """The interfaces of the default routes (IPv4 and IPv6)."""
    found: list[str] = []
    for family in ("-4", "-6"):
        for line in _run(["ip", family, "route", "show", "default"], check=False).stdout.splitlines():
            words = line.split()
            if "dev" in words:
                dev = words[words.index("dev") + 1]
                if dev not in found:
                    found.append(dev)
    return found


def _drop_rules(uplink: str) -> list[list[str]]:
    return [["DOCKER-USER", "-i", bridge, "-o", uplink, "-j", "DROP"] for bridge in BRIDGES]


def install_walls() -> list[str]:
    """The DROP rules (IPv4 and IPv6) and blackhole routes; idempotent. Returns what they are."""
    devs = uplinks()
    done: list[str] = []
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            raise MachineError(f"{tool} not found on PATH: it keeps the containers inside this machine")
        _run([tool, "-N", "DOCKER-USER"], check=False)  # dockerd creates it; before its first start, we do
        for dev in devs:
            for rule in _drop_rules(dev):
                if _run([tool, "-C", *rule], check=False).returncode != 0:
                    _run([tool, "-I", *rule])
                done.append(f"{tool} {' '.join(rule)}")
    for cidr in CLUSTER_RANGES:
        _run(["ip", "route", "replace", "blackhole", cidr])
        done.append(f"ip route blackhole {cidr}")
    return done


def drop_counts() -> int:
    """Packets the IPv4 DROP rules took so far."""
    out = _run(["iptables", "-L", "DOCKER-USER", "-v", "-x", "-n"]).stdout
    return sum(int(line.split()[0]) for line in out.splitlines()[2:] if " DROP " in f" {line} ")


def check_walls(run_in_container: list[str]) -> str:
    """Connects from a container to an address outside the machine: it must time out, and the DROP rules
    must have counted its packets. ``run_in_container`` is the argv that connects (``docker run ...``).
    Returns the one-line verdict; raises MachineError when anything got out or the rules did not see it."""
    missing = [
        r
        for dev in uplinks()
        for r in _drop_rules(dev)
        if _run(["iptables", "-C", *r], check=False).returncode
    ]
    if missing:
        raise MachineError(f"not probing outside: DROP rule missing ({' '.join(missing[0])})")
    before = drop_counts()
    result = _run(run_in_container, timeout=60, check=False)
    after = drop_counts()
    said = (result.stderr + result.stdout).strip()
    if result.returncode == 0:
        raise MachineError(f"a container reached {OUTSIDE_PROBE} outside this machine: the walls do not hold")
    if "TIMEOUT" not in said or after <= before:
        raise MachineError(
            f"the connect to {OUTSIDE_PROBE} said {said or 'nothing'!r}, DROP counters "
            f"{before} -> {after}: expected a timeout counted by the DROP rules"
        )
    dropped = after - before
    return f"a connect to {OUTSIDE_PROBE}:80 timed out; DOCKER-USER dropped {dropped} packet(s)"


if __name__ == "__main__":  # pragma: no cover - manual use
    print(
        ensure_docker(
            Path(os.environ.get("GIM_NETPOL_CACHE_DIR", Path.home() / ".cache/gim-netpol")) / "build"
        )
    )
    print("\n".join(install_walls()))

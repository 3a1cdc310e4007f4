"""What the model backend's cluster does besides enforcing policies: its latencies and its faults.

Latencies (virtual seconds; ``realistic`` is the default, measured on a Kubernetes 1.28 cluster):
a deleted namespace stays ``Terminating`` 10-20 s, a pod is Pending then Ready after 2-5 s, a new or
changed NetworkPolicy takes effect after 1-2 s (the CNI's programming time), one probe exec costs
0.3 s plus, when the packets are dropped, the probe's whole timeout. ``instant`` sets them all to zero.

Faults (``--model-faults``, comma-separated):

- ``api-down@START+SECONDS``: the API server refuses connections from virtual second START (counted
  from the backend's creation) for SECONDS, as a stopped kube-apiserver does;
- ``not-served=KIND``: the API answers 404 for that kind (a CRD not installed): ``not-served=PodMonitor``;
- ``no-dns``: no cluster DNS Service (pods' resolv.conf still names the kubelet's clusterDNS address);
- ``openshift-dns``: DNS served as OpenShift does: Service ``openshift-dns/dns-default``, port 53 -> pod 5353;
- ``no-sctp``: the nodes lack the sctp kernel module: a container that serves SCTP (``agnhost porter`` with a
  ``SERVE_SCTP_PORT_<n>``) exits at once, "protocol not supported", and restarts in CrashLoopBackOff;
- ``no-image=IMAGE``: the registry has no such image: containers of that image stay in ErrImagePull /
  ImagePullBackOff. The pod lifecycle of both: model_pods;
- ``enforcer-crash``: the NetworkPolicy enforcer (Calico, model_enforcer) never becomes Ready, as in issue
  21's run: calico-node in CrashLoopBackOff, Typha and kube-controllers OOMKilled (model_pods), so the
  backend cannot start.
- ``cordoned=NODE@START+SECONDS``: the node is cordoned (``spec.unschedulable``) from virtual second START for
  SECONDS: pods created meanwhile go to the other nodes (all on one node, when it is the only other worker),
  and stay there once it is uncordoned, as when a node is cordoned while the fleet is scheduled. The nodes
  and the scheduler: model_nodes.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, replace

from conformance.errors import UserError


@dataclass(frozen=True)
class Latencies:
    namespace_terminating_s: tuple[float, float] = (10.0, 20.0)
    pod_ready_s: tuple[float, float] = (2.0, 5.0)
    enforcement_delay_s: tuple[float, float] = (1.0, 2.0)
    exec_s: float = 0.3  # one exec's round trip (API server -> kubelet -> runtime), whatever it runs
    # Execs the API server streams at once for one client. Not a documented apiserver limit (exec is a
    # long-running request, outside --max-requests-inflight): the live figures (a round of 40 single-probe
    # execs costs three waves of timeouts with --probe-workers 16) fit 16.
    exec_inflight: int = 16

    @classmethod
    def instant(cls) -> Latencies:
        return cls((0.0, 0.0), (0.0, 0.0), (0.0, 0.0), 0.0, 16)

    def draw(self, span: tuple[float, float], *key: object) -> float:
        """A duration within ``span``, the same every run for the same key (a hash, no random state)."""
        low, high = span
        unit = zlib.crc32(repr(key).encode()) / 0xFFFFFFFF
        return low + (high - low) * unit


LATENCIES = {"realistic": Latencies(), "instant": Latencies.instant()}

DNS_MODES = ("kube-dns", "none", "openshift")


@dataclass(frozen=True)
class Faults:
    api_down: tuple[tuple[float, float], ...] = ()  # [start, end) windows of virtual time
    not_served: tuple[str, ...] = ()  # kinds the API answers 404 for
    dns: str = "kube-dns"
    no_sctp: bool = False  # SCTP listeners fail: the sctp kernel module is not loaded
    unpullable: tuple[str, ...] = ()  # images the registry does not have
    cordoned: tuple[tuple[str, float, float], ...] = ()  # (node, start, end) of virtual time
    enforcer_crash: bool = False  # Calico's containers crash-loop or are OOMKilled

    def api_down_at(self, t: float) -> bool:
        return any(start <= t < end for start, end in self.api_down)

    def serves(self, kind: str) -> bool:
        return kind.lower() not in {k.lower() for k in self.not_served}


_API_DOWN = re.compile(r"api-down@(\d+(?:\.\d+)?)\+(\d+(?:\.\d+)?)")
_CORDONED = re.compile(r"cordoned=([a-z0-9]([-a-z0-9.]*[a-z0-9])?)@(\d+(?:\.\d+)?)\+(\d+(?:\.\d+)?)")


def parse_faults(text: str, source: str = "--model-faults") -> Faults:
    """``"api-down@30+180,no-dns"`` -> Faults. Raises UserError naming the bad item."""
    faults = Faults()
    for item in (i.strip() for i in (text or "").split(",")):
        if not item:
            continue
        if m := _API_DOWN.fullmatch(item):
            start, length = float(m.group(1)), float(m.group(2))
            faults = replace(faults, api_down=(*faults.api_down, (start, start + length)))
        elif item.startswith("not-served=") and item.removeprefix("not-served="):
            faults = replace(faults, not_served=(*faults.not_served, item.removeprefix("not-served=")))
        elif item == "no-dns":
            faults = replace(faults, dns="none")
        elif item == "openshift-dns":
            faults = replace(faults, dns="openshift")
        elif item == "no-sctp":
            faults = replace(faults, no_sctp=True)
        elif item == "enforcer-crash":
            faults = replace(faults, enforcer_crash=True)
        elif item.startswith("no-image=") and item.removeprefix("no-image="):
            faults = replace(faults, unpullable=(*faults.unpullable, item.removeprefix("no-image=")))
        elif m := _CORDONED.fullmatch(item):
            start, length = float(m.group(3)), float(m.group(4))
            faults = replace(faults, cordoned=(*faults.cordoned, (m.group(1), start, start + length)))
        else:
            raise UserError(
                f"unknown fault {item!r}: expected api-down@START+SECONDS, not-served=KIND, no-dns, "
                "openshift-dns, no-sctp, no-image=IMAGE, enforcer-crash, cordoned=NODE@START+SECONDS",
                source=source,
            )
    return faults

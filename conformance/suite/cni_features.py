"""CNI feature canaries: does this cluster's CNI enforce each NetworkPolicy feature the policies use?

The session canary (``controls``) proves that NetworkPolicy is enforced at all. A CNI can still ignore
parts of it: weave-npc 2.8.1 skips a whole policy whose rule names a port, ignores ``endPort`` and never
filters traffic from the node; SCTP needs a kernel module; some enforcers ignore ``ipBlock`` on pod IPs.
Each canary here is one small scenario for one feature, in scratch namespaces of the run: a few pods, one
or two policies, and probes whose expected truth table comes from the simulator. All canaries run
together (one deploy, one baseline round, one policy round), and each is reported

- ``enforced``: every probe observed what the simulator expects;
- ``not enforced``: the mismatching flows are listed;
- ``not checked``: why (the baseline did not connect before any policy, e.g. SCTP unavailable; a
  host-network client is not allowed; the cluster has no kube-dns Service...).

Canaries are independent: a policy only selects pods of its own namespace, and each canary probes only
between its own pods, so one feature ignored shows in its canary alone. Each waits for its own pods: one
whose pod can never run (an SCTP server without the kernel module crash-loops, an image the mirror lacks)
is ``not checked`` as soon as the kubelet says so, with the reason, and the others go on.
``start_canaries`` applies the objects and returns; ``CanaryRun.finish`` does the rest; ``run_canaries``
is the two.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from conformance.backends.base import Backend
from conformance.backends.pod_status import PodProblem
from conformance.netpol.features import FEATURES, FeatureUse, features_used, policy_features
from conformance.netpol.model import Cluster, K8sObject, policy_key
from conformance.netpol.probing import Outcome, Probe
from conformance.netpol.simulator import Simulator
from conformance.probes import agnhost
from conformance.suite.cni_canaries import BY_FEATURE, CANARIES, DNS_SERVICE_ROLE, Canary, Names
from conformance.suite.dns import find_cluster_dns
from conformance.suite.flows import Flow
from conformance.suite.topology import DNS_NAMESPACE
from conformance.suite.verdicts import FlowResult, check

ENFORCED, NOT_ENFORCED, NOT_CHECKED, NOT_RUN = "enforced", "not enforced", "not checked", "not run"
CHOICES = ("needed", "all", "none")


# -- results -------------------------------------------------------------------------------------------
@dataclass
class CanaryResult:
    feature: str
    status: str
    reason: str = ""  # not checked: why; not enforced: how many flows
    mismatches: list[str] = field(
        default_factory=list
    )  # "client -> target:port/proto: expected X, observed Y"
    probes: int = 0

    def line(self) -> str:
        text = f"{self.feature}: {self.status}"
        if self.reason:
            text += f" ({self.reason})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "description": FEATURES[self.feature],
            "canary": BY_FEATURE[self.feature].does,
            "status": self.status,
            "reason": self.reason,
            "mismatches": list(self.mismatches),
            "probes": self.probes,
        }


@dataclass
class CniFeatureReport:
    """The canaries of one run, the features the policies under test use, and what it cost."""

    results: dict[str, CanaryResult]
    needed: dict[str, list[FeatureUse]]
    probes: int = 0
    seconds: float = 0.0  # on the model backend, simulated time (its clock)
    notes: list[str] = field(default_factory=list)

    def status(self, feature: str) -> str:
        result = self.results.get(feature)
        return result.status if result else NOT_RUN

    def failures(self) -> list[str]:
        """One line per feature the policies use and the CNI does not enforce, naming the policy."""
        lines = []
        for feature, uses in self.needed.items():
            result = self.results.get(feature)
            if result is None or result.status != NOT_ENFORCED:
                continue
            first = result.mismatches[0] if result.mismatches else ""
            more = f" (+{len(uses) - 1} more)" if len(uses) > 1 else ""
            lines.append(
                f"CNI does not enforce {feature}: {uses[0].describe()}{more}; canary {feature} observed"
                f" {first}"
            )
        return lines

    def lines(self) -> list[str]:
        out = []
        for feature, result in self.results.items():
            used = self.needed.get(feature)
            who = f"; used by {', '.join(dict.fromkeys(u.policy for u in used))}" if used else ""
            out.append(result.line() + who)
            out += [f"    {m}" for m in result.mismatches]
        return out + [f"note: {n}" for n in self.notes]

    def cost(self) -> str:
        return f"{len(self.results)} canaries, {self.probes} probes, {self.seconds:.1f}s"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CniFeatureReport:
        """The report as ``to_json`` wrote it (another xdist worker's): its verdicts, probes, cost and
        notes. Which policies needed each feature is the writer's to report: it is left out."""
        results = {
            c["feature"]: CanaryResult(
                c["feature"], c["status"], c["reason"], list(c["mismatches"]), c["probes"]
            )
            for c in data.get("canaries", ())
        }
        return cls(results, {}, data.get("probes", 0), data.get("seconds", 0.0), list(data.get("notes", ())))

    def to_json(self) -> dict[str, Any]:
        return {
            "canaries": [r.to_json() for r in self.results.values()],
            "needed": {f: [u.describe() for u in uses] for f, uses in self.needed.items()},
            "failures": self.failures(),
            "probes": self.probes,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }


# -- choosing canaries ---------------------------------------------------------------------------------
def chosen(choice: str, needed: Iterable[str]) -> list[Canary]:
    """The canaries ``--cni-features`` asks for: those of the needed features, all, or none."""
    if choice == "none":
        return []
    if choice == "all":
        return list(CANARIES)
    wanted = set(needed)
    return [c for c in CANARIES if c.feature in wanted]


def needed_features(policies: Iterable[K8sObject]) -> dict[str, list[FeatureUse]]:
    return features_used(policies)


# -- objects -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Where the canaries of one run live: one namespace per canary and role, created by the run; or,
    with ``shared`` (role -> an existing namespace), the namespaces given, which the run neither creates
    nor deletes: its pods, Services and policies are named after the canary and the run there, and such
    canaries run one at a time (their selectors would otherwise select each other's pods)."""

    run_id: str
    suffix: str = ""
    host_network: bool = True  # False: node-traffic is not checked (verify's namespaces are 'restricted')
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    prefix: str = ""  # default: cf-<run id>
    dns_service: str = f"{DNS_NAMESPACE}/kube-dns"  # kind's DNS Service until the cluster's own is found
    shared: Mapping[str, str] = field(default_factory=dict)

    def names(self, canary: Canary) -> Names:
        prefix = self.prefix or f"cf-{self.run_id[:6]}{self.suffix}"

        def name(role: str) -> str:
            if role == DNS_SERVICE_ROLE:
                return self.dns_service
            if "/" in role:  # "role/name": the key of the canary's pod or Service of that name
                role, obj = role.split("/", 1)
                return f"{name(role)}/{self.object_name(canary, obj)}"
            if self.shared:
                return self.shared[role]
            return f"{prefix}-{canary.feature}-{role}"[:63].rstrip("-")

        return name

    def object_name(self, canary: Canary, name: str) -> str:
        """A pod's, Service's or policy's name: the canary's own, or in shared namespaces one naming the
        canary and the run (a DNS-1035 label: it starts with the feature's letter)."""
        if not self.shared:
            return name
        return f"{canary.feature}-{self.run_id[:8]}-{name}"[:63].rstrip("-")

    def key(self, canary: Canary, where: str) -> str:
        if where == DNS_SERVICE_ROLE:
            return self.dns_service
        return self.names(canary)(where)

    def namespaces(self, canary: Canary) -> list[str]:
        return [self.names(canary)(role) for role in canary.namespaces]

    def state_namespaces(self, canaries: Iterable[Canary]) -> list[str]:
        """The namespaces whose objects the canaries' policies and probes need: theirs and the DNS's."""
        return [n for c in canaries for n in self.namespaces(c)] + [self.dns_service.split("/", 1)[0]]

    def objects(self, canary: Canary, image: str) -> list[K8sObject]:
        ns = self.names(canary)
        named = self.object_name
        objects: list[K8sObject] = (
            []
            if self.shared
            else [
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": ns(role),
                        "labels": {
                            agnhost.RUN_LABEL: self.run_id,
                            **self.namespace_labels,
                            **labels,
                            "conformance.gitguardian.com/canary": canary.feature,
                        },
                    },
                }
                for role, labels in canary.namespaces.items()
            ]
        )
        for s in canary.servers:
            role, name = s.where.split("/", 1)
            objects.append(
                agnhost.server_pod(
                    ns(role), named(canary, name), s.labels, s.ports, image=image, run_id=self.run_id
                )
            )
            if s.service:
                objects.append(
                    agnhost.service(ns(role), named(canary, name), s.labels, s.ports, run_id=self.run_id)
                )
        for c in canary.clients:
            role, name = c.where.split("/", 1)
            pod = agnhost.client_pod(ns(role), named(canary, name), c.labels, image=image, run_id=self.run_id)
            if c.host_network:
                pod["spec"]["hostNetwork"] = True
            objects.append(pod)
        return objects

    def policies(self, canary: Canary, state: Cluster) -> list[K8sObject]:
        out = []
        for p in canary.policies(self.names(canary), state):
            p["metadata"]["labels"] = {agnhost.RUN_LABEL: self.run_id}
            p["metadata"]["name"] = self.object_name(canary, p["metadata"]["name"])
            out.append(p)
        return out


class NotCheckable(Exception):
    """A canary that cannot run on this cluster; the message says why."""


def canary_flows(layout: Layout, canary: Canary, state: Cluster, policies: Sequence[K8sObject]) -> list[Flow]:
    """The canary's probes with the simulator's verdicts on ``state`` plus ``policies``."""
    world = Cluster(state.namespaces, state.pods, state.services, list(policies))
    sim = Simulator(world)
    pods = {p.key: p for p in state.pods}
    flows = []
    for c in canary.checks:
        src = pods.get(layout.key(canary, c.client))
        if src is None or not src.ip:
            raise NotCheckable(f"client {layout.key(canary, c.client)} has no IP")
        target = layout.key(canary, c.target)
        if c.via == "service":
            svc = next((s for s in state.services if s.key == target and s.cluster_ip), None)
            if svc is None:
                raise NotCheckable(f"no Service {target} with a ClusterIP in this cluster")
            sp = next((p for p in svc.ports if p.port == c.port and p.protocol == c.protocol), None)
            endpoints = [p for p in state.pods if svc.selects(p) and p.ip and not p.host_network]
            if sp is None or not endpoints:
                raise NotCheckable(f"Service {target} has no endpoint on {c.port}/{c.protocol}")
            dst = endpoints[0]
            port = (
                sp.target_port
                if isinstance(sp.target_port, int)
                else getattr(dst.named_port(sp.target_port, c.protocol), "port", c.port)
            )
            probe = Probe(src.key, target, svc.cluster_ip or "", c.port, c.protocol, "service")
        else:
            dst = pods.get(target)
            if dst is None or not dst.ip:
                raise NotCheckable(f"server {target} has no IP")
            if src.host_network and src.node and src.node == dst.node:
                continue  # traffic from a pod's own node is always allowed (NetworkPolicy concept page)
            port = c.port
            probe = Probe(src.key, target, dst.ip, port, c.protocol, "pod")
        flows.append(Flow(probe, src, dst, port, sim.verdict(src, dst, port, c.protocol), None))
    if policies and not any(not f.expected.allowed for f in flows):
        raise NotCheckable("no probe left that a policy should block (every server is on the client's node)")
    return flows


def _mismatch(r: FlowResult) -> str:
    p = r.flow.probe
    want = "connected" if r.flow.expected.allowed else "blocked"
    seen = r.last.outcome.value if r.last else "nothing"
    return f"{p.client} -> {p.target}:{p.port}/{p.protocol} via {p.via}: expected {want}, observed {seen}"


class _Clock:
    """Seconds on the backend's clock when it has one (the model's virtual clock), else wall time."""

    def __init__(self, backend: Backend) -> None:
        self._clock = getattr(backend, "clock", None)

    def now(self) -> float:
        if self._clock is not None and hasattr(self._clock, "now"):
            return float(self._clock.now())
        return time.monotonic()


def _with_cluster_dns(
    backend: Backend, layout: Layout, live: list[Canary], results: dict[str, CanaryResult]
) -> Layout:
    """The layout with the DNS Service the egress-dns canary's client really uses (kube-system/kube-dns,
    openshift-dns/dns-default...); the canary is not checked when there is none."""
    canary = BY_FEATURE["egress-dns"]
    if canary not in live:
        return layout
    try:
        dns = find_cluster_dns(backend, layout.key(canary, "cli/client"))
    except NotImplementedError:  # a backend that cannot read a pod's resolv.conf: the usual name
        return layout
    if dns.found and dns.service is not None:
        return replace(layout, dns_service=dns.service.key)
    results[canary.feature] = CanaryResult(canary.feature, NOT_CHECKED, dns.not_checked())
    live.remove(canary)
    return layout


@dataclass
class CanaryRun:
    """Canaries whose objects are applied (``start_canaries``); ``finish`` waits for each canary's pods,
    probes, judges and deletes. Between the two the caller may do other work (bring up a probe fleet)."""

    backend: Backend
    layout: Layout
    report: CniFeatureReport
    live: list[Canary]  # applied, not judged yet
    namespace_objects: list[K8sObject]
    clock: _Clock
    start: float
    created: list[K8sObject] = field(default_factory=list)  # what to delete at the end in shared namespaces

    def finish(
        self,
        *,
        probe_timeout_s: float,
        deadline_s: float,
        ready_timeout_s: float,
        retry_interval_s: float = 1.0,
    ) -> CniFeatureReport:
        """Each canary's readiness on its own (one that cannot run is ``not checked`` at once, the others
        go on), one baseline round and one policy round for all, verdicts; the canaries' namespaces are
        deleted whatever happens. Never raises for a canary that cannot run."""
        try:
            if self.ready(ready_timeout_s, retry_interval_s):
                _judge(self, probe_timeout_s, deadline_s, retry_interval_s)
            return self.report
        finally:
            self.delete()

    def ready(self, ready_timeout_s: float, poll_s: float = 1.0) -> bool:
        """Wait for each canary's pods on its own; whether any canary is left to probe."""
        if self.live:
            self.live = _ready_canaries(self, ready_timeout_s, poll_s)
        return bool(self.live)

    def rounds(self) -> CanaryRounds:
        """The ready canaries' flows and policies, planned on the cluster as it is now."""
        results, live = self.report.results, self.live
        self.layout = layout = _with_cluster_dns(self.backend, self.layout, live, results)
        state = self.backend.state(layout.state_namespaces(live))
        planned: dict[str, tuple[list[Flow], list[K8sObject]]] = {}
        for c in live:
            try:
                policies = layout.policies(c, state)
                planned[c.feature] = (canary_flows(layout, c, state, policies), policies)
            except (NotCheckable, StopIteration, KeyError, ValueError) as exc:
                why = str(exc) or f"no Service {layout.dns_service} in this cluster"
                results[c.feature] = CanaryResult(c.feature, NOT_CHECKED, why)
        baseline = {
            f: canary_flows(layout, BY_FEATURE[f], state, []) if flows else []
            for f, (flows, _) in planned.items()
        }
        return CanaryRounds(self, planned, baseline)

    def delete(self) -> None:
        """Delete the canaries' namespaces (not waited for); in shared namespaces, what the run created."""
        if self.layout.shared:
            if self.created:
                self.backend.delete(list(reversed(self.created)))
                self.created = []
        elif self.namespace_objects:
            self.backend.delete(self.namespace_objects)
            self.namespace_objects = []
        self.report.seconds = self.clock.now() - self.start


def start_canaries(
    backend: Backend,
    canaries: Sequence[Canary],
    layout: Layout,
    *,
    image: str,
    needed: Mapping[str, list[FeatureUse]] | None = None,
) -> CanaryRun:
    """Apply the canaries' namespaces and pods, without waiting for them. A canary this cluster refuses
    (admission, a policy engine...) or cannot host (a host-network client where Pod Security forbids it)
    is ``not checked`` at once; the others are left to ``CanaryRun.finish``."""
    clock = _Clock(backend)
    start = clock.now()
    results: dict[str, CanaryResult] = {}
    report = CniFeatureReport(results, dict(needed or {}))
    live: list[Canary] = []
    for c in canaries:
        if not runs_in(layout, c):
            results[c.feature] = CanaryResult(
                c.feature,
                NOT_CHECKED,
                "needs a host-network client pod, which the scratch namespaces' Pod Security level"
                " 'restricted' forbids",
            )
        else:
            results[c.feature] = CanaryResult(c.feature, NOT_RUN)
            live.append(c)
    namespace_objects = [o for c in live for o in layout.objects(c, image) if o["kind"] == "Namespace"]
    run = CanaryRun(backend, layout, report, live, namespace_objects, clock, start)
    try:
        for c in list(live):  # one canary refused leaves the others
            try:
                apply_each(backend, layout.objects(c, image), run.created)
            except RuntimeError as exc:
                results[c.feature] = CanaryResult(c.feature, NOT_CHECKED, f"refused: {exc}")
                live.remove(c)
    except BaseException:
        run.delete()
        raise
    return run


def run_canaries(
    backend: Backend,
    canaries: Sequence[Canary],
    layout: Layout,
    *,
    image: str,
    probe_timeout_s: float,
    deadline_s: float,
    ready_timeout_s: float,
    retry_interval_s: float = 1.0,
    needed: Mapping[str, list[FeatureUse]] | None = None,
) -> CniFeatureReport:
    """Deploy the canaries, probe them before and after their policies, delete them; never raises for a
    canary that cannot run (it is reported ``not checked``)."""
    run = start_canaries(backend, canaries, layout, image=image, needed=needed)
    return run.finish(
        probe_timeout_s=probe_timeout_s,
        deadline_s=deadline_s,
        ready_timeout_s=ready_timeout_s,
        retry_interval_s=retry_interval_s,
    )


# klog's header (k8s.io/klog: Lmmdd hh:mm:ss.uuuuuu threadid file:line]), which agnhost 2.56 logs with.
_KLOG_HEADER = re.compile(r"^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [\w.-]+:\d+\] ")


def server_error(message: str) -> str:
    """The error a server's last log line ends with: "protocol not supported" of agnhost 2.56's
    "I1205 08:27:33.509521 1 log.go:245] Failed to listen SCTP. error:protocol not supported" (live) and of
    older agnhosts' "Failed to listen: listen sctp: protocol not supported"."""
    line = _KLOG_HEADER.sub("", message.strip())
    for marker in ("error:", ": "):
        if marker in line:
            return line.rsplit(marker, 1)[-1].strip()
    return line


def cannot_run(canary: Canary, problem: PodProblem) -> str:
    """Why a canary whose pod can never be Ready is not checked, in one line."""
    if problem.pull:
        return f"cannot pull image {problem.image!r} ({problem.reason}): {problem.message}"
    if canary.cannot_run and problem.message:
        return canary.cannot_run.format(error=server_error(problem.message))
    return f"pods cannot run: {problem.line()}"


def _ready_canaries(run: CanaryRun, ready_timeout_s: float, poll_s: float) -> list[Canary]:
    """The canaries whose pods are all Ready, each waited for on its own: one whose pod crash-loops or
    cannot be pulled is ``not checked`` as soon as the kubelet says so, one still not Ready after
    ``ready_timeout_s`` is ``not checked`` then; neither holds the others back."""
    backend, layout, results = run.backend, run.layout, run.report.results
    deadline = run.clock.now() + ready_timeout_s
    pending, ready = list(run.live), []
    while True:
        unready = backend.unready_pods([n for c in pending for n in layout.namespaces(c)])
        for c in list(pending):
            mine = {k: p for k, p in unready.items() if k.split("/", 1)[0] in layout.namespaces(c)}
            problems = [p for p in mine.values() if p is not None]
            if not mine:
                ready.append(c)
            elif problems:
                results[c.feature] = CanaryResult(c.feature, NOT_CHECKED, cannot_run(c, problems[0]))
            elif run.clock.now() >= deadline:
                why = f"pods not ready after {ready_timeout_s:g}s: {', '.join(sorted(mine))}"
                results[c.feature] = CanaryResult(c.feature, NOT_CHECKED, why)
            else:
                continue
            pending.remove(c)
        if not pending:
            return [c for c in run.live if c in ready]
        backend.clock.sleep(poll_s)


def _judge(run: CanaryRun, probe_timeout_s: float, deadline_s: float, retry_interval_s: float) -> None:
    """The canaries' shared rounds (a baseline with no policy, then their policies) and their verdicts."""
    rounds = run.rounds()

    def probe_round(flows: list[Flow], label: str) -> list[FlowResult]:
        return check(
            run.backend,
            flows,
            label=label,
            probe_timeout_s=probe_timeout_s,
            deadline_s=deadline_s,
            retry_interval_s=retry_interval_s,
        ).results

    rounds.take_baseline(probe_round(rounds.baseline_flows(), "CNI feature canaries: baseline"))
    rounds.apply_policies()
    # check() probes a flow expected through again when it connected before the blocks held (the
    # policies take a moment to be programmed), so a skipped allow policy shows here.
    rounds.take_verdicts(probe_round(rounds.policy_flows(), "CNI feature canaries"))


@dataclass
class CanaryRounds:
    """The two rounds the ready canaries share: a baseline with no policy (every probe must connect, else
    the feature cannot be judged here), then their policies. A caller may probe these flows together with
    its own in one check (the session's controls do), as long as it keeps the order: baseline results,
    then the policies applied, then the verdicts."""

    run: CanaryRun
    planned: dict[str, tuple[list[Flow], list[K8sObject]]]
    baseline: dict[str, list[Flow]]

    def baseline_flows(self) -> list[Flow]:
        return [x for flows in self.baseline.values() for x in flows]

    def take_baseline(self, results: Sequence[FlowResult]) -> None:
        """A canary whose baseline did not connect is ``not checked``, with what was seen."""
        report = self.run.report
        report.probes += sum(len(r.samples) for r in results)
        for feature in list(self.planned):
            keys = {id(x) for x in self.baseline[feature]}
            failed = [r for r in results if id(r.flow) in keys and not r.settled]
            if failed:
                hint = BY_FEATURE[feature].unavailable
                report.results[feature] = CanaryResult(
                    feature,
                    NOT_CHECKED,
                    (hint + "; " if hint else "") + "before any policy, " + _mismatch(failed[0]),
                    probes=sum(len(r.samples) for r in failed),
                )
                del self.planned[feature]

    def apply_policies(self) -> None:
        policies = [p for _, policies in self.planned.values() for p in policies]
        apply_each(self.run.backend, policies, self.run.created)

    def policy_flows(self) -> list[Flow]:
        return [x for flows, _ in self.planned.values() for x in flows]

    def take_verdicts(self, results: Sequence[FlowResult]) -> None:
        """Each canary ``enforced``, ``not enforced`` (its mismatching flows) or ``not checked``."""
        report = self.run.report
        report.probes += sum(len(r.samples) for r in results)
        rejects = sum(1 for r in results for o in r.samples if o.outcome is Outcome.REJECTED)
        if rejects:
            report.notes.append(
                f"{rejects} denied connections were refused at once on ports that answered before the"
                " policy: this CNI rejects denied connections instead of dropping them (counted as blocked)"
            )
        for feature, (flows, _) in self.planned.items():
            keys = {id(x) for x in flows}
            mine = [r for r in results if id(r.flow) in keys]
            bad = [r for r in mine if not r.settled]
            n = sum(len(r.samples) for r in mine)
            if not bad:
                report.results[feature] = CanaryResult(feature, ENFORCED, probes=n)
            elif all(r.infrastructure_error for r in bad):
                detail = bad[0].last.detail if bad[0].last else ""
                report.results[feature] = CanaryResult(
                    feature, NOT_CHECKED, f"probe errors: {detail}", probes=n
                )
            else:
                report.results[feature] = CanaryResult(
                    feature,
                    NOT_ENFORCED,
                    f"{len(bad)} of {len(mine)} probes disagree with the simulator",
                    [_mismatch(r) for r in bad],
                    probes=n,
                )


def runs_in(layout: Layout, canary: Canary) -> bool:
    """Whether the canary can run in the layout's namespaces (a host-network client needs them privileged)."""
    return layout.host_network or not any(cl.host_network for cl in canary.clients)


def apply_each(backend: Backend, objects: Sequence[K8sObject], created: list[K8sObject]) -> None:
    """Apply the objects one by one, each added to ``created`` once the API accepted it: what is deleted
    at the end is what exists (deleting an object never created could be refused, hiding the first error)."""
    for obj in objects:
        backend.apply([obj])
        created.append(obj)


def plan_objects(layout: Layout, canaries: Sequence[Canary], image: str, backend: Backend) -> list[K8sObject]:
    """Every object the canaries create (namespaces, pods, Services, then the policies), as they would be
    on ``backend`` (an in-memory model: the ipBlock canary needs pod IPs)."""
    objects = [o for c in canaries for o in layout.objects(c, image)]
    backend.apply(objects)
    state = backend.state(layout.state_namespaces(canaries))
    return objects + [p for c in canaries for p in layout.policies(c, state)]


# -- what the policies under test need, and what a mismatch may owe to the CNI -------------------------
def policies_under_test(
    values: Any, manifests_policies: Sequence[K8sObject] | None, gim_namespace: str
) -> list[K8sObject]:
    """The policies a run deploys: the chart's (--manifests), the reference rendering of --values, or,
    without values, the reference rendering of what the suite's own tests deploy (the documentation's
    enforce example with its SMTP egress extraPolicy)."""
    from conformance.gim.examples import DOC_ALLOWED_NAMESPACES, smtp_egress_policy
    from conformance.gim.render import render
    from conformance.gim.values import NetpolValues

    if manifests_policies is not None:
        return list(manifests_policies)
    if values is None:
        values = NetpolValues(
            enabled=True,
            mode="enforce",
            allowed_namespaces=DOC_ALLOWED_NAMESPACES,
            extra_policies=(smtp_egress_policy(),),
        )
    return render(values, gim_namespace)


def _canary_word(cni: CniFeatureReport | None, feature: str) -> str:
    if cni is None or feature not in cni.results:
        return f"CNI canary {feature} not run (--cni-features all runs every canary)"
    result = cni.results[feature]
    word = result.status.upper() if result.status == NOT_ENFORCED else result.status
    return f"CNI canary {feature}: {word}" + (f" ({result.reason})" if result.reason else "")


def feature_hints(
    policies: Sequence[K8sObject], cni: CniFeatureReport | None, *, limit: int = 6
) -> Callable[[FlowResult], list[str]]:
    """For a mismatching flow: the features of the rules that should have allowed it (expected
    connected), or of the policies that should have isolated it (expected blocked), each with its
    canary's result; features the CNI was seen not to enforce come first."""
    by_key = {policy_key(p): p for p in policies}
    sim = Simulator(Cluster({}, [], [], list(policies)))

    def uses_for(r: FlowResult) -> list[FeatureUse]:
        flow, verdict = r.flow, r.flow.expected
        found: list[FeatureUse] = []
        if verdict.allowed:
            for direction, d in (("ingress", verdict.ingress), ("egress", verdict.egress)):
                if d.isolated and d.policy in by_key and d.rule is not None:
                    uses = policy_features(by_key[d.policy])
                    found += [u for u in uses if u.direction == direction and u.rule == d.rule]
                    found += [u for u in uses if u.rule is not None and u not in found]  # the rest of it
        else:
            for direction, d, pod in (
                ("ingress", verdict.ingress, flow.destination),
                ("egress", verdict.egress, flow.source),
            ):
                if not d.allowed:
                    for key in sim.isolating(pod, direction):
                        found += policy_features(by_key[key])
        if flow.probe.via != "service":
            found = [u for u in found if u.feature != "service-ip"]
        return list(dict.fromkeys(found))

    def hints(r: FlowResult) -> list[str]:
        uses = uses_for(r)
        uses.sort(key=lambda u: cni is None or cni.status(u.feature) != NOT_ENFORCED)
        lines = [f"{u.describe()}: {_canary_word(cni, u.feature)}" for u in uses[:limit]]
        if len(uses) > limit:
            lines.append(f"... and {len(uses) - limit} more features of these policies")
        return lines

    return hints


def cni_summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The terminal summary of a CniFeatureReport's JSON (as carried from xdist workers)."""
    canaries = report["canaries"]
    lines = [f"CNI features: {len(canaries)} canaries, {report['probes']} probes, {report['seconds']:.1f}s"]
    for c in canaries:
        lines.append(f"  {c['feature']}: {c['status']}" + (f" ({c['reason']})" if c["reason"] else ""))
        lines.extend(f"      {m}" for m in c["mismatches"])
    return lines

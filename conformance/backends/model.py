"""The ``model`` backend: no cluster. Objects are kept in memory and probes answered by the simulator.

It behaves like an API server, a kubelet and a policy-enforcing CNI, not like an ideal cluster:

- pods get IPs and Services ClusterIPs on apply, every namespace carries its
  ``kubernetes.io/metadata.name`` label, a cluster DNS is there from the start (``kube-system/kube-dns``
  at 10.96.0.10, or as ``--model-faults`` says);
- deletion is asynchronous: a deleted namespace is ``Terminating`` for a while (its pods go at once),
  creating anything in it is refused with 403 "is being terminated", then it disappears;
- nodes as kind makes them (``nodes=``, ``--model-nodes``: a tainted control plane and workers), and pods
  placed on them as kube-scheduler does, spread by their topologySpreadConstraints (model_nodes);
- pods are Pending, then Running and Ready after a delay; an exec in a pod that is not running fails,
  a connection to a pod that does not listen yet is refused; a container that cannot run (a fault)
  crash-loops or fails its image pull as the kubelet reports it (model_pods);
- a new, changed or deleted NetworkPolicy takes effect after the CNI's programming delay: until
  then probes see the old verdict;
- a probe is ``blocked`` when the programmed policies deny it (and costs its full timeout: the CNI
  drops), or ``refused`` at once with the ``rejects`` CNI profile; ``refused`` when allowed but nothing
  listens; ``connected`` otherwise;
- time is a VirtualClock: waiting advances it at once, so a run's figures are simulated live seconds;
- faults on demand (API down for a window, a kind not served, no DNS, OpenShift DNS): model_faults;
- when the suite opens the backend, its NetworkPolicy enforcer (Calico's pods, model_enforcer) is waited
  for as the kind backend waits for Calico (enforcer.wait_pods_ready): Ready at once, unless the
  ``enforcer-crash`` fault keeps it from ever starting;
- RBAC (``rbac=``, model_rbac): every request is recorded in ``calls`` as the live backend makes it
  (verb, group, resource/subresource, namespace) and refused with the API server's 403 when the rules
  given do not allow it; an exec is ``create pods/exec`` (``get`` as API servers before 1.31 authorize it).

Several ModelBackend objects can share one ModelCluster, as several API clients (xdist workers, a
probe fleet) share one real cluster; each remembers the namespaces it created.
"""

from __future__ import annotations

import bisect
import copy
import ipaddress
from collections.abc import Iterable, Sequence

from conformance.backends import model_enforcer, model_icmp, model_nodes, model_pods
from conformance.backends.api_retry import TransientApiError
from conformance.backends.base import ApiError, Backend, Forbidden, PodsCannotRun
from conformance.backends.clock import VirtualClock
from conformance.backends.cni_profiles import DEFAULT as DEFAULT_CNI
from conformance.backends.cni_profiles import CniProfile
from conformance.backends.enforcer_pods import CALICO_NAMESPACES, wait_pods_ready
from conformance.backends.model_faults import Faults, Latencies
from conformance.backends.model_rbac import RESOURCES, ApiCall, Rbac
from conformance.backends.nodes import Node
from conformance.backends.pod_status import PodProblem, never_ready
from conformance.netpol.model import Cluster, K8sObject, Pod
from conformance.netpol.probing import Observation, Outcome, Probe, sample_twice
from conformance.netpol.simulator import Simulator
from conformance.netpol.snapshot import cluster_from_objects
from conformance.probes.agnhost import RUN_LABEL

POD_CIDR = ipaddress.ip_network("10.244.0.0/16")
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
CLUSTER_DNS_IP = "10.96.0.10"  # the kubelet's clusterDNS on kind and kubeadm clusters
API_URL = "https://model-apiserver:6443"
CLUSTER_SCOPED = ("Namespace",)
KINDS = ("Namespace", "Pod", "Service", "NetworkPolicy")
DEFAULT_PROBE_WORKERS = 16

Key = tuple[str, str, str]


def _key(obj: K8sObject) -> Key:
    meta = obj.get("metadata") or {}
    ns = "" if obj.get("kind") in CLUSTER_SCOPED else (meta.get("namespace") or "default")
    return (str(obj.get("kind")), ns, str(meta.get("name")))


def _dns_objects(mode: str) -> list[K8sObject]:
    """The cluster's DNS: CoreDNS as kubeadm/kind deploy it, or as OpenShift's DNS operator does
    (openshift/cluster-dns-operator assets/dns: Service dns-default, ports dns/dns-tcp 53 ->
    targetPort dns/dns-tcp, the daemonset's containers listening on 5353)."""
    if mode == "none":
        return []
    if mode == "openshift":
        ns, name, pod, port = "openshift-dns", "dns-default", "dns-default-abcde", 5353
        labels = {"dns.operator.openshift.io/daemonset-dns": "default"}
        tolerations = [{"operator": "Exists"}]  # the DNS daemonset runs on every node
    else:
        ns, name, pod, port = "kube-system", "kube-dns", "coredns", 53
        labels = {"k8s-app": "kube-dns"}
        # kubeadm's CoreDNS Deployment (cmd/kubeadm/app/phases/addons/dns/manifests.go)
        tolerations = [
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
        ]
    container_ports = [
        {"name": "dns", "containerPort": port, "protocol": "UDP"},
        {"name": "dns-tcp", "containerPort": port, "protocol": "TCP"},
    ]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"namespace": ns, "name": pod, "labels": labels},
            "spec": {"containers": [{"name": "dns", "ports": container_ports}], "tolerations": tolerations},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {
                "clusterIP": CLUSTER_DNS_IP,
                "selector": labels,
                "ports": [
                    {"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "targetPort": "dns-tcp", "protocol": "TCP"},
                ],
            },
        },
    ]


class ModelCluster:
    """The in-memory cluster: objects, their lifecycle on the virtual clock, the CNI's programming."""

    def __init__(
        self,
        *,
        cni: CniProfile = DEFAULT_CNI,
        latencies: Latencies | None = None,
        faults: Faults | None = None,
        clock: VirtualClock | None = None,
        rbac: Rbac | None = None,
        exec_verb: str = "create",
        nodes: int | Sequence[Node] = model_nodes.DEFAULT_NODES,
    ) -> None:
        self.cni = cni
        self.icmp = model_icmp.IcmpRateLimit()  # the nodes' kernels: a rejecting CNI's answers are limited
        self.rbac = rbac
        self.exec_verb = exec_verb
        self.calls: set[ApiCall] = set()  # every request made, without object names
        self.latencies = latencies or Latencies()
        self.faults = faults or Faults()
        self.clock = clock or VirtualClock()
        self.nodes = tuple(model_nodes.kind_nodes(nodes) if isinstance(nodes, int) else nodes)
        model_nodes.check_cordoned(self.faults.cordoned, self.nodes)
        self._epoch = self.clock.now()
        self.objects: dict[Key, K8sObject] = {}
        self._gone_at: dict[str, float] = {}  # Terminating namespace -> when it disappears
        self._ready_at: dict[Key, float] = {}  # Pending pod -> when it is Running and Ready
        self._faulty: dict[Key, tuple[model_pods.ContainerFault, float]] = {}  # never Ready: since when
        self._unscheduled: dict[Key, bool] = {}  # Pending, no node fits yet -> Ready at once when placed
        self._policy_log: list[tuple[float, Key, K8sObject | None]] = []  # what the CNI programs, when
        self._pod_ips = (str(ip) for ip in POD_CIDR.hosts())
        self._service_ips = (str(ip) for ip in list(SERVICE_CIDR.hosts())[10:])
        self._generation = 0
        self._draws: dict[str, int] = {}
        self._cache: dict[tuple[int, int], tuple[Cluster, Simulator]] = {}
        self._state: tuple[int, Cluster] | None = None
        self.apply(_dns_objects(self.faults.dns), ready=True)

    # -- the API server ------------------------------------------------------------------------------
    def api(self) -> None:
        """Every API call: refused while the API is down; lets time-driven changes happen first."""
        if self.faults.api_down_at(self.clock.now() - self._epoch):
            raise TransientApiError("connection refused")
        self._tick()

    def request(self, call: ApiCall) -> None:
        """One API request: the API's state first, then recorded, then authorized (403 Forbidden)."""
        self.api()
        self.calls.add(call.anonymous())
        if self.rbac is not None:
            self.rbac.authorize(call)

    def _tick(self) -> None:
        now = self.clock.now()
        for key, ready in list(self._unscheduled.items()):  # the scheduler retries pods it could not place
            pod = self.objects.get(key)
            node = None if pod is None else self._schedule(key, pod)
            if pod is None or node is not None:
                del self._unscheduled[key]
            if pod is not None and node is not None:
                pod["spec"]["nodeName"] = node
                pod["status"]["podIP"] = next(self._pod_ips)
                self._start(key, pod, ready)
                self._changed()
        gone = [ns for ns, t in self._gone_at.items() if t <= now]
        for ns in gone:
            del self._gone_at[ns]
            self.objects.pop(("Namespace", "", ns), None)
            self._changed()
        for key, t in list(self._ready_at.items()):
            if t <= now:
                del self._ready_at[key]
                pod = self.objects.get(key)
                if pod is not None:
                    pod["status"].update(_ready_status())
                    self._changed()
        for key, (fault, since) in self._faulty.items():
            pod = self.objects.get(key)
            if pod is not None and since <= now:
                status = {**pod["status"], **model_pods.status(pod, fault, now - since)}
                if status != pod["status"]:
                    pod["status"] = status
                    self._changed()

    def _draw(self, span: tuple[float, float], what: str) -> float:
        """The duration of the n-th event of its kind in this cluster: the same sequence every run,
        whatever the objects are called (their names carry the random run id)."""
        self._draws[what] = n = self._draws.get(what, 0) + 1
        return self.latencies.draw(span, what, n)

    def _changed(self) -> None:
        self._generation += 1

    def phase(self, namespace: str) -> str | None:
        if ("Namespace", "", namespace) not in self.objects:
            return None
        return "Terminating" if namespace in self._gone_at else "Active"

    def apply(self, objects: Sequence[K8sObject], *, ready: bool = False) -> list[str]:
        """Create or replace; returns the namespaces created. Raises ApiError as the API server would."""
        created: list[str] = []
        for obj in sorted(objects, key=lambda o: o.get("kind") != "Namespace"):
            kind, ns, name = key = _key(obj)
            if not self.faults.serves(kind):
                raise ApiError(404, f"the server could not find the requested resource ({kind})")
            if kind not in KINDS:
                continue
            if kind == "Namespace" and name in self._gone_at:
                # As KubeBackend does: a namespace still being deleted is waited out, then created.
                self.clock.advance_to(self._gone_at[name])
                self._tick()
            if kind != "Namespace":
                phase = self.phase(ns)
                if phase is None:
                    raise ApiError(404, f'namespaces "{ns}" not found')
                if phase == "Terminating":
                    raise ApiError(
                        403,
                        f'{kind.lower()}s "{name}" is forbidden: unable to create new content in namespace '
                        f"{ns} because it is being terminated",
                    )
            new = copy.deepcopy(obj)
            meta = new.setdefault("metadata", {})
            if kind != "Namespace":
                meta["namespace"] = ns
            old = self.objects.get(key)
            if kind == "Namespace" and old is None:
                created.append(name)
            if kind == "Pod":
                self._place_pod(key, new, old, ready or self.latencies.pod_ready_s == (0.0, 0.0))
            elif kind == "Service":
                spec = new.setdefault("spec", {})
                if old is not None:
                    spec["clusterIP"] = old["spec"]["clusterIP"]
                elif spec.get("clusterIP") in (None, ""):
                    spec["clusterIP"] = next(self._service_ips)
            elif kind == "NetworkPolicy" and not _same_policy(old, new):
                # An apply that changes nothing is a no-op for the API server (no new resourceVersion,
                # no watch event): the CNI has nothing to program.
                self._program(key, new)
            self.objects[key] = new
        self._changed()
        return created

    def nodes_now(self) -> list[Node]:
        """The nodes as they stand now (a node in a cordon window of the faults is cordoned)."""
        return model_nodes.nodes_at(self.nodes, self.faults.cordoned, self.clock.now() - self._epoch)

    def _schedule(self, key: Key, pod: K8sObject) -> str | None:
        placed = (o for k, o in self.objects.items() if k[0] == "Pod" and k != key)
        return model_nodes.choose(pod, self.nodes_now(), placed)

    def _place_pod(self, key: Key, new: K8sObject, old: K8sObject | None, ready: bool) -> None:
        status = new.setdefault("status", {})
        if old is not None and old.get("spec") == new.get("spec"):
            status.update(old["status"])  # labels changed only: the pod keeps running
            return
        self._faulty.pop(key, None)
        self._unscheduled.pop(key, None)
        spec = new.setdefault("spec", {})
        if not spec.get("nodeName"):
            node = self._schedule(key, new)
            if node is None:  # no node fits: Pending until one does (_tick)
                status.update(
                    {
                        "phase": "Pending",
                        "conditions": [
                            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"},
                            {"type": "Ready", "status": "False"},
                        ],
                    }
                )
                status.pop("podIP", None)
                self._ready_at.pop(key, None)
                self._unscheduled[key] = ready
                return
            spec["nodeName"] = node
        status["podIP"] = (old["status"].get("podIP") if old else None) or next(self._pod_ips)
        self._start(key, new, ready)

    def _start(self, key: Key, new: K8sObject, ready: bool) -> None:
        """A pod placed on its node: Ready now or after its delay, or never (a container fault)."""
        status = new["status"]
        fault = model_pods.pod_fault(new, self.faults)
        if fault is not None:
            status.update({"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]})
            self._ready_at.pop(key, None)
            self._faulty[key] = (fault, self.clock.now() + self._draw(self.latencies.pod_ready_s, "pod"))
        elif ready:
            status.update(_ready_status())
            self._ready_at.pop(key, None)
        else:
            status.update({"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]})
            self._ready_at[key] = self.clock.now() + self._draw(self.latencies.pod_ready_s, "pod")

    def install_enforcer(self) -> None:
        """Calico, as its operator runs it (model_enforcer): Ready at once, or failing as the faults say."""
        self.apply(model_enforcer.calico_objects([n.name for n in self.nodes]), ready=True)

    def last_log(self, namespace: str, pod: str, container: str) -> str:
        """``kubectl logs --previous`` of a container: what a failing one printed last."""
        key = ("Pod", namespace, pod)
        if key not in self.objects:
            raise ApiError(404, f'pods "{pod}" not found')
        fault = self._faulty.get(key, (None, 0.0))[0]
        return model_pods.last_log(self.objects[key], container, fault)

    def _program(self, key: Key, policy: K8sObject | None) -> None:
        """The CNI programs policy changes in order, each after its programming delay."""
        delay = self._draw(self.latencies.enforcement_delay_s, "policy")
        after = self._policy_log[-1][0] if self._policy_log else 0.0
        self._policy_log.append((max(self.clock.now() + delay, after), key, policy))

    def delete(self, objects: Sequence[K8sObject]) -> None:
        now = self.clock.now()
        for obj in objects:
            kind, ns, name = key = _key(obj)
            if kind == "Namespace":
                if key in self.objects and name not in self._gone_at:
                    delay = self._draw(self.latencies.namespace_terminating_s, "namespace")
                    self._gone_at[name] = now + delay
                    for k in [k for k in self.objects if k[1] == name]:
                        self._remove(k)
                    if delay <= 0:
                        self._tick()
            elif key in self.objects:
                self._remove(key)
        self._changed()

    def _remove(self, key: Key) -> None:
        del self.objects[key]
        self._ready_at.pop(key, None)
        self._faulty.pop(key, None)
        self._unscheduled.pop(key, None)
        if key[0] == "NetworkPolicy":
            self._program(key, None)

    # -- what is observed ----------------------------------------------------------------------------
    def state(self) -> Cluster:
        if self._state is None or self._state[0] != self._generation:
            self._state = (
                self._generation,
                cluster_from_objects(("model", o) for o in self.objects.values()),
            )
        return self._state[1]

    def enforced(self) -> tuple[Cluster, Simulator]:
        """The cluster as the CNI enforces it now: the policies it has programmed, through its quirks."""
        now = self.clock.now()
        effective = bisect.bisect_right([t for t, _, _ in self._policy_log], now)
        cache_key = (self._generation, effective)
        hit = self._cache.get(cache_key)
        if hit is None:
            programmed: dict[Key, K8sObject] = {}
            for _, key, policy in self._policy_log[:effective]:
                if policy is None:
                    programmed.pop(key, None)
                else:
                    programmed[key] = policy
            state = self.state()
            policies = self.cni.programmed(
                cluster_from_objects(("model", p) for p in programmed.values()).policies
            )
            enforced = Cluster(state.namespaces, state.pods, state.services, policies)
            hit = self._cache[cache_key] = (enforced, Simulator(enforced))
            if len(self._cache) > 8:
                self._cache.pop(next(iter(self._cache)))
        return hit

    def running(self, key: Key) -> bool:
        """Running and Ready: a crash-looping pod is Running, but nothing in it runs for long."""
        pod = self.objects.get(key)
        status = (pod or {}).get("status") or {}
        conditions = status.get("conditions") or ()
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        return status.get("phase") == "Running" and ready

    def resolv_conf(self, namespace: str) -> str:
        return (
            f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local\n"
            f"nameserver {CLUSTER_DNS_IP}\noptions ndots:5\n"
        )


def _same_policy(old: K8sObject | None, new: K8sObject) -> bool:
    if old is None:
        return False
    return old.get("spec") == new.get("spec") and (old.get("metadata") or {}).get("labels") == (
        new.get("metadata") or {}
    ).get("labels")


def _ready_status() -> dict:
    return {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}


class ModelBackend(Backend):
    name = "model"
    api_url = API_URL

    def __init__(
        self,
        *,
        cni: CniProfile = DEFAULT_CNI,
        latencies: Latencies | None = None,
        faults: Faults | None = None,
        cluster: ModelCluster | None = None,
        probe_workers: int = DEFAULT_PROBE_WORKERS,
        probe_batch: bool = True,
        pace: float = 0.0,
        nodes: int | Sequence[Node] = model_nodes.DEFAULT_NODES,
    ) -> None:
        """A client of ``cluster`` (a new one, with ``cni``, ``latencies``, ``faults``, ``nodes`` and its
        clock's ``pace``, if not given)."""
        self.cluster = cluster or ModelCluster(
            cni=cni, latencies=latencies, faults=faults, clock=VirtualClock(pace=pace), nodes=nodes
        )
        self.clock = self.cluster.clock
        self.probe_workers = probe_workers
        self.probe_batch = probe_batch
        self.created_namespaces: list[str] = []

    @property
    def cni(self) -> CniProfile:
        return self.cluster.cni

    def _request(self, verb: str, kind: str, namespace: str = "", name: str = "", sub: str = "") -> None:
        """The request the live backend (KubeBackend) makes for this: recorded and authorized."""
        group, resource = RESOURCES.get(kind, ("", kind))
        self.cluster.request(ApiCall(verb, group, resource, sub, namespace, name))

    def _requests_to_apply(self, objects: Sequence[K8sObject]) -> None:
        """KubeBackend.apply: create; an object that exists answers 409, is read and replaced (a pod:
        its labels patched)."""
        for obj in objects:
            key = _key(obj)
            self._request("create", key[0], key[1], key[2])
            if key in self.cluster.objects:
                self._request("get", key[0], key[1], key[2])
                self._request("patch" if key[0] == "Pod" else "update", key[0], key[1], key[2])

    def detect_cni(self) -> str:
        """As KubeBackend.detect_cni: the CNI named from the cluster's DaemonSets."""
        self._request("list", "DaemonSet")
        return f"model CNI ({self.cni.name})"

    # -- objects -------------------------------------------------------------------------------------
    def apply(self, objects: Sequence[K8sObject]) -> None:
        self.cluster.api()
        self._requests_to_apply(objects)
        for name in self.cluster.apply(objects):
            if name not in self.created_namespaces:
                self.created_namespaces.append(name)

    def delete(self, objects: Sequence[K8sObject]) -> None:
        self.cluster.api()
        for obj in objects:
            self._request("delete", *_key(obj))
        self.cluster.delete(objects)
        gone = {o["metadata"]["name"] for o in objects if o.get("kind") == "Namespace"}
        self.created_namespaces = [n for n in self.created_namespaces if n not in gone]

    def wait_gone(self, objects: Sequence[K8sObject], timeout_s: float) -> None:
        self.delete(objects)
        names = [o["metadata"]["name"] for o in objects if o.get("kind") == "Namespace"]
        self._wait(lambda: [n for n in names if self.cluster.phase(n)], timeout_s, "still exists")

    def wait_ready(self, namespaces: Iterable[str], timeout_s: float) -> None:
        """Until every pod is Ready; PodsCannotRun at once when one crash-loops or cannot be pulled."""
        wanted = list(namespaces)

        def unready() -> list[str]:
            pods = self.unready_pods(wanted)
            stuck = {k: p for k, p in pods.items() if p is not None}
            if stuck:
                raise PodsCannotRun(stuck)
            return list(pods)

        self._wait(unready, timeout_s, "not ready")

    def unready_pods(self, namespaces: Iterable[str]) -> dict[str, PodProblem | None]:
        wanted = set(namespaces)
        for namespace in sorted(wanted):
            self._request("list", "Pod", namespace)
        return {
            f"{k[1]}/{k[2]}": never_ready(o)
            for k, o in self.cluster.objects.items()
            if k[0] == "Pod" and k[1] in wanted and not self.cluster.running(k)
        }

    # -- the enforcer, as the backend's start waits for it -------------------------------------------
    def start_enforcer(self, timeout_s: float) -> None:
        """What the kind backend does once its cluster exists: the enforcer is there (model_enforcer),
        and its pods are waited for as kind waits for Calico's (enforcer.wait_pods_ready): a pod that can
        never be Ready stops the start at once with EnforcerCannotStart, naming it and why."""
        self.cluster.api()
        self.cluster.install_enforcer()
        wait_pods_ready(
            model_enforcer.WHAT,
            CALICO_NAMESPACES,
            self.kubectl_json,
            clock=self.clock,
            timeout_s=timeout_s,
            last_log=self.last_log,
        )

    def kubectl_json(self, *args: str) -> dict:
        """What ``kubectl get pods -n NS -o json`` prints (the one kubectl read the model answers, for
        code written against kubectl: enforcer.read_pods)."""
        if len(args) != 4 or args[:3] != ("get", "pods", "-n"):
            raise ValueError(f"the model answers `kubectl get pods -n NS` only, not {' '.join(args)!r}")
        namespace = args[3]
        self._request("list", "Pod", namespace)
        objects = self.cluster.objects.items()
        pods = [copy.deepcopy(o) for (kind, ns, _), o in objects if kind == "Pod" and ns == namespace]
        return {"apiVersion": "v1", "kind": "List", "items": pods}

    def last_log(self, namespace: str, pod: str, container: str) -> str:
        """``kubectl logs -n NS POD -c CONTAINER --previous``."""
        self._request("get", "Pod", namespace, pod, "log")
        return self.cluster.last_log(namespace, pod, container)

    def _wait(self, pending, timeout_s: float, what: str) -> None:
        """Poll ``pending`` every second of virtual time (as the live backend does) until it is empty."""
        deadline = self.clock.now() + timeout_s
        while True:
            self.cluster.api()
            left = pending()
            if not left:
                return
            if self.clock.now() >= deadline:
                raise RuntimeError(f"{', '.join(left)} {what} after {timeout_s:g}s")
            self.clock.sleep(1.0)

    def nodes(self) -> list[Node]:
        """As KubeBackend.nodes: ``list nodes``, the cluster's nodes as they stand now."""
        self._request("list", "Node")
        return self.cluster.nodes_now()

    def namespace_phases(self) -> dict[str, str]:
        self._request("list", "Namespace")
        return {k[2]: self.cluster.phase(k[2]) or "" for k in self.cluster.objects if k[0] == "Namespace"}

    def delete_run(self, run_id: str) -> list[str]:
        self._request("list", "Namespace")
        names = [
            k[2]
            for k, o in self.cluster.objects.items()
            if k[0] == "Namespace"
            and (o["metadata"].get("labels") or {}).get(RUN_LABEL) == run_id
            and self.cluster.phase(k[2]) == "Active"
        ]
        for name in names:
            self._request("delete", "Namespace", "", name)
        self.cluster.delete([_namespace(n) for n in names])
        return names

    def objects(self, kind: str | None = None) -> list[K8sObject]:
        self.cluster.api()
        return [copy.deepcopy(o) for k, o in self.cluster.objects.items() if kind is None or k[0] == kind]

    def state(self, namespaces: Iterable[str]) -> Cluster:
        self._request("list", "Namespace")
        wanted = set(namespaces)
        for namespace in sorted(wanted):
            for kind in ("Pod", "Service", "NetworkPolicy"):
                self._request("list", kind, namespace)
        full = self.cluster.state()
        return Cluster(
            dict(full.namespaces),
            [p for p in full.pods if p.namespace in wanted],
            [s for s in full.services if s.namespace in wanted],
            [p for p in full.policies if (p.get("metadata") or {}).get("namespace") in wanted],
        )

    def services_all(self) -> list:
        self._request("list", "Service")
        return list(self.cluster.state().services)

    def resolv_conf(self, pod_key: str) -> str:
        namespace, name = pod_key.split("/", 1)
        self._request(self.cluster.exec_verb, "Pod", namespace, name, sub="exec")
        return self.cluster.resolv_conf(pod_key.split("/", 1)[0])

    # -- probes --------------------------------------------------------------------------------------
    def answer(self, probes: Sequence[Probe], timeout_s: float) -> list[Observation]:
        """What each probe observes now (the API, the kubelet and the CNI as they stand), each with what
        it costs: the exec's round trip plus, for a dropped packet, the whole timeout. Moves no clock."""
        self._request_execs(probes)
        state, simulator = self.cluster.enforced()
        index = _Index(state)
        return [self._probe_one(p, timeout_s, state, simulator, index) for p in probes]

    def probe(self, probes: Sequence[Probe], timeout_s: float) -> list[Observation]:
        """One exec per probe, as ``agnhost connect`` exec'd alone."""
        observations = self.answer(probes, timeout_s)
        exec_s = self.cluster.latencies.exec_s
        self._run_execs([max(exec_s, o.latency_s) for o in observations])  # an exec costs its round trip
        return observations

    def probe_samples(
        self, probes: Sequence[Probe], timeout_s: float, confirm: Sequence[bool]
    ) -> list[list[Observation]]:
        """With ``probe_batch`` (the default, as the live prober): one exec per client pod whose connects
        run at once, a block to confirm sampled again inside it; without, one exec per sample, the
        confirmations in a second wave (Backend.probe_samples)."""
        if not self.probe_batch:
            return super().probe_samples(probes, timeout_s, confirm)
        samples = sample_twice(probes, confirm, lambda some: self.answer(some, timeout_s))
        exec_s = self.cluster.latencies.exec_s
        # Inside one exec the first connects run concurrently; once they are all done, the confirmations
        # run concurrently: the exec lasts its round trip, the slowest first connect, the slowest second.
        passes: dict[str, list[float]] = {}
        for probe, got in zip(probes, samples, strict=True):
            slowest = passes.setdefault(probe.client, [0.0, 0.0])
            for n, o in enumerate(got):
                slowest[n] = max(slowest[n], o.latency_s - exec_s)
        per_client = {client: first + second for client, (first, second) in passes.items()}
        self._run_execs([exec_s + waited for waited in per_client.values()])
        return samples

    def _run_execs(self, costs: Sequence[float]) -> None:
        """Execs of these durations, ``probe_workers`` at a time on the client's side and at most
        ``exec_inflight`` at a time on the API server's: the clock moves by the busiest slot's total."""
        slots = [0.0] * max(1, min(self.probe_workers, self.cluster.latencies.exec_inflight, len(costs) or 1))
        for cost in costs:
            i = slots.index(min(slots))
            slots[i] += cost
        self.clock.advance(max(slots))

    def _probe_one(
        self, probe: Probe, timeout_s: float, state: Cluster, simulator: Simulator, index: _Index
    ) -> Observation:
        exec_s = self.cluster.latencies.exec_s

        def seen(outcome: Outcome, detail: str, waited: float = 0.0) -> Observation:
            return Observation(probe, outcome, detail, exec_s + waited)

        client = index.pods.get(probe.client)
        if client is None:
            return seen(Outcome.ERROR, f'pods "{probe.client}" not found')
        if not self.cluster.running(("Pod", client.namespace, client.name)):
            return seen(Outcome.ERROR, 'unable to upgrade connection: container not found ("client")')
        destination: Pod | str = probe.host
        port = probe.port
        service = index.services.get(probe.host)
        if service is not None:
            sp = next((p for p in service.ports if p.port == port and p.protocol == probe.protocol), None)
            endpoints = [
                p
                for p in state.pods
                if service.selects(p) and p.ip and self.cluster.running(("Pod", p.namespace, p.name))
            ]
            if sp is None or not endpoints:
                # kube-proxy rejects connections to a Service port without ready endpoints
                return seen(Outcome.REFUSED, "REFUSED: no endpoints for this Service port")
            destination = endpoints[0]
            if isinstance(sp.target_port, int):
                port = sp.target_port
            else:
                named = destination.named_port(sp.target_port, probe.protocol)
                if named is None:
                    return seen(Outcome.REFUSED, f"REFUSED: no port named {sp.target_port}")
                port = named.port
        elif probe.host in index.pod_ips:
            destination = index.pod_ips[probe.host]
        if isinstance(destination, str):
            return seen(Outcome.BLOCKED, f"TIMEOUT: no host at {destination}", timeout_s)
        unfiltered = client.host_network and not self.cni.filters_node_traffic
        verdict = None if unfiltered else simulator.verdict(client, destination, port, probe.protocol)
        if verdict is not None and not verdict.allowed:
            if self.cni.rejects:
                # the node that rejects: the destination's for a denied ingress, the client's for egress
                node = (destination.node if not verdict.ingress.allowed else client.node) or ""
                if self.cluster.icmp.allow(node, client.ip or probe.client, self.clock.now()):
                    return seen(Outcome.REFUSED, f"REFUSED (the CNI rejects: {verdict.reason})")
                why = "its port-unreachable over the node's ICMP rate limit"
                return seen(Outcome.BLOCKED, f"TIMEOUT (the CNI rejects: {verdict.reason}; {why})", timeout_s)
            return seen(Outcome.BLOCKED, f"TIMEOUT ({verdict.reason})", timeout_s)
        listening = self.cluster.running(("Pod", destination.namespace, destination.name)) and any(
            cp.port == port and cp.protocol == probe.protocol for cp in destination.ports
        )
        if not listening:
            return seen(Outcome.REFUSED, f"REFUSED: nothing listens on {port}/{probe.protocol}")
        return seen(Outcome.CONNECTED, verdict.reason if verdict else "not filtered: from the node")

    def _request_execs(self, probes: Sequence[Probe]) -> None:
        """Each probe is an exec in its client pod (each request is also the API's tick)."""
        for client in sorted({p.client for p in probes}):
            namespace, name = client.split("/", 1)
            self._request(self.cluster.exec_verb, "Pod", namespace, name, sub="exec")

    def diagnose(self, pod_key: str) -> str:
        ns, name = pod_key.split("/", 1)
        try:
            self._request("get", "Pod", ns, name)
        except Forbidden as exc:  # as KubeBackend.diagnose: what the API said instead
            return f"pod {pod_key}: {exc}"
        pod = self.cluster.objects.get(("Pod", ns, name))
        if pod is None:
            return f"pod {pod_key} does not exist"
        return f"pod {pod_key}: phase {pod['status'].get('phase')}"


class _Index:
    def __init__(self, state: Cluster) -> None:
        self.pods = {p.key: p for p in state.pods}
        self.pod_ips = {p.ip: p for p in state.pods if p.ip and not p.host_network}
        self.services = {s.cluster_ip: s for s in state.services if s.cluster_ip}


def _namespace(name: str) -> K8sObject:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}

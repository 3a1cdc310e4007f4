"""The live backend: a real cluster through the official kubernetes python client (v37).

Used by ``kind`` (on the cluster KindCluster made) and ``existing`` (any kubeconfig and context).
Client usage follows the client's README and examples: ``config.load_kube_config(config_file,
context, client_configuration=...)``, typed APIs (CoreV1Api, NetworkingV1Api, AppsV1Api) whose
bodies are the generated models (``V1Pod.from_dict`` of our manifests), ``ApiException.status``
for errors, and ``ApiClient.sanitize_for_serialization`` to turn read objects back into the plain
dicts (camelCase, as ``kubectl get -o json`` prints them) that conformance.netpol.snapshot reads.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from conformance.api_errors import status_message
from conformance.backends.api_retry import quiet_urllib3_retries, transient_reason
from conformance.backends.base import ApiError, Backend, BackendUnavailable, Forbidden, PodsCannotRun
from conformance.backends.nodes import Node, node_from_object
from conformance.backends.pod_status import PodProblem, never_ready
from conformance.netpol.model import Cluster, K8sObject, Service, object_key
from conformance.netpol.probing import Observation, Probe
from conformance.netpol.snapshot import cluster_from_objects
from conformance.probes.agnhost import RUN_LABEL, connect_command
from conformance.probes.held import HeldConnection
from conformance.probes.prober import ExecFailed, pod_events, run_batches, run_exec, run_probes

SPEC_HASH = "conformance.gitguardian.com/spec-hash"
APPLY_ORDER = {"Namespace": 0, "NetworkPolicy": 1, "Service": 2, "Pod": 3}
MODELS = {
    "Namespace": client.V1Namespace,
    "NetworkPolicy": client.V1NetworkPolicy,
    "Service": client.V1Service,
    "Pod": client.V1Pod,
}
# DaemonSet name -> the CNI it belongs to.
KNOWN_CNI_DAEMONSETS = {
    "calico-node": "Calico",
    "cilium": "Cilium",
    "aws-node": "AWS VPC CNI",
    "kindnet": "kindnet",
    "kube-flannel-ds": "flannel",
    "canal": "Canal",
    "weave-net": "Weave Net",
    "antrea-agent": "Antrea",
    "kube-router": "kube-router",
    "kube-network-policies": "kube-network-policies",
    "azure-npm": "Azure NPM",
}
GONE_POLL_S = 1.0
NAMESPACE_GONE_TIMEOUT_S = 180.0
READY_POLL_S = 2.0
# pod_events' line of the kubelet's event 'Failed to pull image "<image>": <error>' (reason Failed); its
# other Failed event, "Error: ErrImagePull", says nothing more.
_PULL_FAILED = re.compile(r'^Warning Failed: Failed to pull image "[^"]*": (.*?)(?: \(x\d+\))?$')


# --- pure helpers (tested without a cluster) -------------------------------------------------------


def order_for_apply(objects: Iterable[K8sObject]) -> list[K8sObject]:
    """Namespaces first, then policies (in force before any pod starts), Services, Pods."""
    objs = list(objects)
    for obj in objs:
        if obj.get("kind") not in APPLY_ORDER:
            raise ValueError(
                f"the live backend cannot apply {object_key(obj)}: only {', '.join(APPLY_ORDER)}"
            )
    return sorted(objs, key=lambda o: APPLY_ORDER[o["kind"]])


def label_patch(current: dict[str, str] | None, wanted: dict[str, str]) -> dict[str, str | None]:
    """A strategic-merge patch of ``metadata.labels`` that leaves exactly ``wanted``."""
    return {**{k: None for k in (current or {}) if k not in wanted}, **wanted}


def spec_hash(pod: K8sObject) -> str:
    """A digest of a pod's spec: pods are immutable, so a different digest means delete and recreate."""
    return hashlib.sha256(json.dumps(pod.get("spec") or {}, sort_keys=True).encode()).hexdigest()[:16]


def with_spec_hash(pod: K8sObject) -> K8sObject:
    meta = dict(pod.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), SPEC_HASH: spec_hash(pod)}
    return {**pod, "metadata": meta}


def as_object(api_client: Any, item: Any, kind: str, api_version: str) -> K8sObject:
    """A client model read from the API as a plain dict. List items carry no kind: it is set here."""
    obj = api_client.sanitize_for_serialization(item)
    obj["kind"] = kind
    obj["apiVersion"] = api_version
    return obj


def _conditions(obj: K8sObject) -> dict[str, dict]:
    return {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or ()}


def pod_is_ready(pod: K8sObject) -> bool:
    status = pod.get("status") or {}
    return (
        status.get("phase") == "Running"
        and bool(status.get("podIP"))
        and _conditions(pod).get("Ready", {}).get("status") == "True"
    )


def pod_problems(pod: K8sObject) -> str:
    """Why a pod is not ready: phase, false conditions, waiting or crashed containers."""
    status = pod.get("status") or {}
    parts = [f"phase {status.get('phase') or 'unknown'}"]
    for ctype, cond in _conditions(pod).items():
        if cond.get("status") != "True":
            why = ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x)
            parts.append(f"{ctype}=False" + (f" ({why})" if why else ""))
    for cs in status.get("containerStatuses") or ():
        state = cs.get("state") or {}
        for key in ("waiting", "terminated"):
            if key in state and state[key]:
                detail = state[key]
                why = ": ".join(x for x in (detail.get("reason"), detail.get("message")) if x)
                parts.append(f"container {cs.get('name')} {key}" + (f" ({why})" if why else ""))
        if cs.get("restartCount"):
            parts.append(f"container {cs.get('name')} restarted {cs['restartCount']}x")
    if not status.get("podIP"):
        parts.append("no pod IP yet")
    return "; ".join(parts)


def cni_from_daemonsets(daemonsets: Iterable[tuple[str, str]]) -> str:
    """Which CNI the (namespace, name) DaemonSets show, e.g. "Calico (calico-system/calico-node)"."""
    found = []
    for namespace, name in daemonsets:
        for prefix, cni in KNOWN_CNI_DAEMONSETS.items():
            if name == prefix or name.startswith(prefix + "-"):
                found.append(f"{cni} ({namespace}/{name})")
    return ", ".join(sorted(set(found))) or "unknown (no DaemonSet of a known CNI)"


def repro_command(probe: Probe, timeout_s: float, kubeconfig: str | None, context: str | None) -> str:
    """``kubectl exec ... agnhost connect ...``: the probe, by hand, against the same cluster."""
    ns, pod = probe.client.split("/", 1)
    argv = ["kubectl"]
    if kubeconfig:
        argv += ["--kubeconfig", kubeconfig]
    if context:
        argv += ["--context", context]
    argv += ["exec", "-n", ns, pod, "--", *connect_command(probe.host, probe.port, probe.protocol, timeout_s)]
    return shlex.join(argv)


def _api_error(exc: ApiException) -> str:
    return status_message(exc) or str(exc.reason or exc).strip()


def _raise_if_forbidden(exc: ApiException) -> None:
    """An RBAC refusal (403 whose Status message says ``User "..." cannot <verb> resource ...``, the
    authorizer's wording) as Forbidden: not an object an admission policy refused, which callers tolerate."""
    message = _api_error(exc)
    if exc.status == 403 and " cannot " in message and " resource " in message:
        raise Forbidden(message) from None


# --- the backend -----------------------------------------------------------------------------------


class KubeBackend(Backend):
    """A cluster reached through a kubeconfig and a context, as kubectl takes them."""

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        name: str = "existing",
        probe_workers: int = 8,
        probe_batch: bool = True,
    ) -> None:
        self.name = name
        self.probe_batch = probe_batch
        self.no_shell: set[str] = set()  # client pods whose image has no /bin/sh: one exec per probe
        self.kubeconfig = kubeconfig
        self.context = context
        self.probe_workers = probe_workers
        self.created_namespaces: list[str] = []
        self.configuration = client.Configuration()
        try:
            config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=self.configuration
            )
        except Exception as exc:  # ConfigException, missing file, bad YAML
            raise BackendUnavailable(
                f"cannot load kubeconfig {kubeconfig or '(default)'} "
                f"context {context or '(current)'}: {exc}; "
                "pass --kubeconfig FILE --context NAME, or run without a cluster with --backend model"
            ) from None
        quiet_urllib3_retries()
        self.api_client = client.ApiClient(configuration=self.configuration)
        self.core = client.CoreV1Api(self.api_client)
        self.networking = client.NetworkingV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)

    @property
    def api_url(self) -> str:
        return str(self.configuration.host)

    def new_core_api(self) -> client.CoreV1Api:
        """A CoreV1Api on its own ApiClient (one per prober thread: exec is not thread-safe)."""
        return client.CoreV1Api(client.ApiClient(configuration=self.configuration))

    # apply

    def apply(self, objects: Sequence[K8sObject]) -> None:
        for obj in order_for_apply(objects):
            try:
                self._apply_one(obj)
            except ApiException as exc:
                if transient_reason(exc):
                    raise
                message = _api_error(exc)
                _raise_if_forbidden(exc)
                if exc.status == 403 and "PodSecurity" in message:
                    raise RuntimeError(
                        f"{object_key(obj)} rejected by Pod Security admission: {message}. The probe pods "
                        "meet the 'restricted' level; a stricter custom admission policy must allow them"
                    ) from None
                raise ApiError(
                    exc.status, f"cannot apply {object_key(obj)}: {message} (HTTP {exc.status})"
                ) from None

    def _apply_one(self, obj: K8sObject) -> None:
        kind = obj["kind"]
        meta = obj["metadata"]
        name, ns = meta["name"], meta.get("namespace")
        if kind == "Pod":
            obj = with_spec_hash(obj)
        body = MODELS[kind].from_dict(obj)
        create, read, replace = self._verbs(kind, name, ns)
        if kind == "Namespace":
            create = self._recording(create, name)
        try:
            create(body)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
        current = read()
        if kind == "Pod":
            have = (current.metadata.annotations or {}).get(SPEC_HASH)
            if have == obj["metadata"]["annotations"][SPEC_HASH]:
                # Same spec: only labels (mutable) may differ. The client sends a dict as a strategic
                # merge patch, which merges maps: a label to drop must be sent as null.
                labels = meta.get("labels") or {}
                self.core.patch_namespaced_pod(
                    name, ns, {"metadata": {"labels": label_patch(current.metadata.labels, labels)}}
                )
                return
            self.core.delete_namespaced_pod(name, ns, grace_period_seconds=0)
            self._wait_gone(lambda: self.core.read_namespaced_pod(name, ns), f"pod {ns}/{name}", 120)
            create(body)
            return
        if kind == "Namespace" and getattr(current.status, "phase", None) == "Terminating":
            # A namespace still being deleted (a previous run's) takes no new objects: wait it out.
            self._wait_gone(read, f"namespace {name} (Terminating)", NAMESPACE_GONE_TIMEOUT_S)
            create(body)
            return
        body.metadata.resource_version = current.metadata.resource_version
        if kind == "Service":
            # clusterIP is immutable: keep the one allocated.
            body.spec.cluster_ip = current.spec.cluster_ip
            body.spec.cluster_ips = current.spec.cluster_ips
        replace(body)

    def _recording(self, create: Callable, name: str) -> Callable:
        """``create`` that remembers the namespace as this backend's: it deletes it at the end."""

        def call(body: Any) -> None:
            create(body)
            if name not in self.created_namespaces:
                self.created_namespaces.append(name)

        return call

    def _verbs(self, kind: str, name: str, ns: str | None) -> tuple[Callable, Callable, Callable]:
        c, n = self.core, self.networking
        if kind == "Namespace":
            return (
                lambda b: c.create_namespace(b),
                lambda: c.read_namespace(name),
                lambda b: c.replace_namespace(name, b),
            )
        if kind == "Service":
            return (
                lambda b: c.create_namespaced_service(ns, b),
                lambda: c.read_namespaced_service(name, ns),
                lambda b: c.replace_namespaced_service(name, ns, b),
            )
        if kind == "NetworkPolicy":
            return (
                lambda b: n.create_namespaced_network_policy(ns, b),
                lambda: n.read_namespaced_network_policy(name, ns),
                lambda b: n.replace_namespaced_network_policy(name, ns, b),
            )
        return (
            lambda b: c.create_namespaced_pod(ns, b),
            lambda: c.read_namespaced_pod(name, ns),
            lambda b: None,
        )

    # delete

    def delete(self, objects: Sequence[K8sObject], *, wait: bool = False, timeout_s: float = 180) -> None:
        """Delete the objects (absent ones are fine). Namespaces are waited for only when ``wait``."""
        namespaces = []
        for obj in reversed(order_for_apply(objects)):
            kind, meta = obj["kind"], obj["metadata"]
            name, ns = meta["name"], meta.get("namespace")
            try:
                if kind == "Pod":
                    self.core.delete_namespaced_pod(name, ns, grace_period_seconds=0)
                elif kind == "Service":
                    self.core.delete_namespaced_service(name, ns)
                elif kind == "NetworkPolicy":
                    self.networking.delete_namespaced_network_policy(name, ns)
                else:
                    namespaces.append(name)
                    self.core.delete_namespace(name)
            except ApiException as exc:
                if transient_reason(exc):
                    raise
                _raise_if_forbidden(exc)
                # Deleting a namespace that is already Terminating answers 409 Conflict ("The system is
                # ensuring all content is removed from this namespace", kubernetes
                # pkg/registry/core/namespace/storage/storage.go, v1.28): it is on its way out.
                if exc.status != 404 and not (kind == "Namespace" and exc.status == 409):
                    raise RuntimeError(f"cannot delete {object_key(obj)}: {_api_error(exc)}") from None
        self.created_namespaces = [n for n in self.created_namespaces if n not in namespaces]
        if wait:
            deadline = self.clock.now() + timeout_s
            for name in namespaces:
                left = max(1.0, deadline - self.clock.now())
                self._wait_gone(lambda name=name: self.core.read_namespace(name), f"namespace {name}", left)

    def wait_gone(self, objects: Sequence[K8sObject], timeout_s: float) -> None:
        self.delete(objects, wait=True, timeout_s=timeout_s)

    def resolv_conf(self, pod_key: str) -> str:
        """``cat /etc/resolv.conf`` exec'd in the pod: agnhost is built on Alpine (its Dockerfile in
        kubernetes test/images/agnhost installs bash etc. with apk), so busybox's cat is there."""
        ns, name = pod_key.split("/", 1)
        try:
            code, out, err = run_exec(self.new_core_api(), ns, name, ["cat", "/etc/resolv.conf"], 30.0)
        except ExecFailed as exc:
            raise RuntimeError(f"cannot read /etc/resolv.conf of {pod_key}: {exc}") from None
        if code != 0:
            raise RuntimeError(f"cannot read /etc/resolv.conf of {pod_key}: exit {code}: {err.strip()[:200]}")
        return out

    def services_all(self) -> list[Service]:
        items = self.core.list_service_for_all_namespaces().items
        objects = [as_object(self.api_client, s, "Service", "v1") for s in items]
        return cluster_from_objects(("cluster", o) for o in objects).services

    def namespace_phases(self) -> dict[str, str]:
        return {
            n.metadata.name: (n.status.phase if n.status else "") for n in self.core.list_namespace().items
        }

    def nodes(self) -> list[Node]:
        """Every node with its Ready condition, cordon and taints (``list nodes``, cluster-scoped: the
        identity needs it for the cross-node check; a 403 is Forbidden, naming the missing rule)."""
        try:
            items = self.core.list_node().items
        except ApiException as exc:
            if not transient_reason(exc):
                _raise_if_forbidden(exc)
            raise
        return [node_from_object(as_object(self.api_client, n, "Node", "v1")) for n in items]

    def hold_connection(self, probe: Probe, timeout_s: float) -> HeldConnection:
        return HeldConnection(self.new_core_api(), probe, timeout_s)

    def delete_run(self, run_id: str, *, wait: bool = False, timeout_s: float = 180) -> list[str]:
        """Delete every namespace labelled with the run id (what a crashed run left); their names."""
        items = self.core.list_namespace(label_selector=f"{RUN_LABEL}={run_id}").items
        names = [ns.metadata.name for ns in items]
        self.delete(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names],
            wait=wait,
            timeout_s=timeout_s,
        )
        return names

    def _wait_gone(self, read: Callable[[], Any], what: str, timeout_s: float) -> None:
        deadline = self.clock.now() + timeout_s
        while True:
            try:
                read()
            except ApiException as exc:
                if exc.status == 404:
                    return
                raise
            if self.clock.now() >= deadline:
                raise RuntimeError(f"{what} still exists {timeout_s:g}s after its deletion (finalizers?)")
            self.clock.sleep(GONE_POLL_S)

    # readiness and state

    def _pods(self, namespace: str, label_selector: str | None = None) -> list[K8sObject]:
        pods = self.core.list_namespaced_pod(namespace, label_selector=label_selector).items
        return [as_object(self.api_client, p, "Pod", "v1") for p in pods]

    def unready_pods(self, namespaces: Iterable[str]) -> dict[str, PodProblem | None]:
        return {key: problem for key, (_, problem) in self._unready(list(namespaces)).items()}

    def _unready(self, namespaces: list[str]) -> dict[str, tuple[K8sObject, PodProblem | None]]:
        """The probe pods (labelled with RUN_LABEL) of the namespaces that are not Ready, each with why it
        never will be (pod_status), read from ``status.containerStatuses``."""
        out: dict[str, tuple[K8sObject, PodProblem | None]] = {}
        for ns in namespaces:
            for pod in self._pods(ns, RUN_LABEL):
                if not pod_is_ready(pod):
                    problem = never_ready(pod)
                    if problem is not None and problem.pull and not problem.message:
                        problem = replace(problem, message=self._pull_error(ns, pod["metadata"]["name"]))
                    out[f"{ns}/{pod['metadata']['name']}"] = (pod, problem)
        return out

    def _pull_error(self, namespace: str, name: str) -> str:
        """The kubelet's last 'Failed to pull image' event: before Kubernetes 1.32 the ImagePullBackOff
        message does not carry the error (pkg/kubelet/images/image_manager.go, v1.28: "Back-off pulling
        image %q"; the event reason is "Failed", events.FailedToPullImage)."""
        failed = [
            m.group(1)
            for line in pod_events(self.core, namespace, name).splitlines()
            if (m := _PULL_FAILED.match(line))
        ]
        return failed[-1] if failed else ""

    def wait_ready(self, namespaces: Iterable[str], timeout_s: float) -> None:
        """Wait for the probe pods (labelled with RUN_LABEL) of the namespaces. Other pods of a borrowed
        namespace (the user's own, finished Jobs...) are not ours to wait for. A pod that never will be
        Ready (crash loop, image pull error) raises PodsCannotRun at once."""
        namespaces = list(namespaces)
        deadline = self.clock.now() + timeout_s
        while True:
            pods = self._unready(namespaces)
            stuck = {key: problem for key, (_, problem) in pods.items() if problem is not None}
            if stuck:
                raise PodsCannotRun(stuck)
            unready = [pod for pod, _ in pods.values()]
            if not unready:
                return
            if self.clock.now() >= deadline:
                lines = []
                for p in unready:
                    meta = p["metadata"]
                    events = pod_events(self.core, meta["namespace"], meta["name"])
                    lines.append(f"{meta['namespace']}/{meta['name']}: {pod_problems(p)}; events: {events}")
                raise RuntimeError(
                    f"{len(unready)} probe pod(s) not ready after {timeout_s:g}s: " + " || ".join(lines)
                )
            self.clock.sleep(READY_POLL_S)

    def state(self, namespaces: Iterable[str]) -> Cluster:
        ac = self.api_client
        objects = [as_object(ac, n, "Namespace", "v1") for n in self.core.list_namespace().items]
        for ns in namespaces:
            objects += self._pods(ns)
            objects += [
                as_object(ac, s, "Service", "v1") for s in self.core.list_namespaced_service(ns).items
            ]
            objects += [
                as_object(ac, p, "NetworkPolicy", "networking.k8s.io/v1")
                for p in self.networking.list_namespaced_network_policy(ns).items
            ]
        source = f"cluster {self.context or '(current context)'}"
        return cluster_from_objects((source, obj) for obj in objects)

    # probes

    def probe(self, probes: Sequence[Probe], timeout_s: float) -> list[Observation]:
        return run_probes(self.new_core_api, probes, timeout_s, self.probe_workers)

    def probe_samples(
        self, probes: Sequence[Probe], timeout_s: float, confirm: Sequence[bool]
    ) -> list[list[Observation]]:
        return run_batches(
            self.new_core_api,
            probes,
            timeout_s,
            confirm,
            self.probe_workers,
            batch=self.probe_batch,
            no_shell=self.no_shell,
        )

    def diagnose(self, pod_key: str) -> str:
        ns, name = pod_key.split("/", 1)
        try:
            pod = as_object(self.api_client, self.core.read_namespaced_pod(name, ns), "Pod", "v1")
        except ApiException as exc:
            return f"pod {pod_key}: {_api_error(exc)}"
        return f"pod {pod_key}: {pod_problems(pod)}\n{pod_events(self.core, ns, name)}"

    def repro(self, probe: Probe, timeout_s: float) -> str:
        return repro_command(probe, timeout_s, self.kubeconfig, self.context)

    def detect_cni(self) -> str:
        items = self.apps.list_daemon_set_for_all_namespaces().items
        return cni_from_daemonsets((d.metadata.namespace, d.metadata.name) for d in items)

    def close(self) -> None:
        self.api_client.close()

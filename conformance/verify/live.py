"""The live run of ``gim-netpol verify``: permissions, read-only discovery, CNI canary, probes.

It cannot run on a machine without a cluster; what decides is the same code as the snapshot path
(``analyse``), and the pure parts here (object conversion, probe planning, canary verdict, admission
advice) are tested without one. Kubernetes client usage follows the python client's documentation
(github.com/kubernetes-client/python, v29+; this project pins 37): ``config.load_kube_config`` /
``load_incluster_config``, ``CoreV1Api.list_*_for_all_namespaces``, ``NetworkingV1Api.list_ingress_class``,
``CustomObjectsApi.list_cluster_custom_object(group, version, plural)`` (returns a dict),
``ApisApi.get_api_versions`` for the groups the server serves, and
``ApiClient.sanitize_for_serialization`` to turn models into the dicts ``kubectl get -o json`` prints.

Safety: nothing is written in the GIM namespace or any existing namespace, except (opt-in
``--probe-allowed-namespaces``) one short-lived client pod per allowed namespace. Everything the run
creates carries ``conformance.gitguardian.com/run=<run id>`` and is deleted in a ``finally`` (Ctrl-C
included; SIGTERM is turned into the same path); ``gim-netpol cleanup`` removes what a killed run left.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.api_errors import status_message
from conformance.backends.api_retry import quiet_urllib3_retries
from conformance.backends.base import BackendUnavailable
from conformance.errors import UserError
from conformance.netpol.model import Cluster, ContainerPort, K8sObject, Pod
from conformance.netpol.probing import Observation, Outcome, Probe, rejected
from conformance.probes import agnhost
from conformance.suite.flows import plan_flows
from conformance.suite.verdicts import observe, settled
from conformance.verify import kinds
from conformance.verify.analysis import Analysis, ProbeRecord, analyse
from conformance.verify.cni_features import check_cni_features, explain_probes
from conformance.verify.discovery import ClusterView, view_from_objects
from conformance.verify.flowlogs import FlowLog
from conformance.verify.rbac import api_review, missing_permissions, required_permissions

RUN_LABEL = agnhost.RUN_LABEL
CANARY_PORT = 8080
SCRATCH_PREFIX = "gim-netpol-verify"
READY_TIMEOUT_S = 180.0

# kind -> how to list it (api name, method); the typed lists carry no kind.
CORE_LISTS: dict[str, tuple[str, str]] = {
    "Namespace": ("core", "list_namespace"),
    "Pod": ("core", "list_pod_for_all_namespaces"),
    "Service": ("core", "list_service_for_all_namespaces"),
    "NetworkPolicy": ("networking", "list_network_policy_for_all_namespaces"),
    "Ingress": ("networking", "list_ingress_for_all_namespaces"),
    "IngressClass": ("networking", "list_ingress_class"),
}


@dataclass(frozen=True)
class LiveOptions:
    kubeconfig: str | None = None
    context: str | None = None
    probe_allowed_namespaces: bool = False
    timeout_s: float = 5.0
    image: str | None = None
    deadline_s: float = 30.0  # retrying disagreeing probes (and waiting for the canary's deny-all to hold)
    cni_features: str = "needed"  # the CNI feature canaries: needed (by GIM's policies), all, none


# -- connection -------------------------------------------------------------------------------------


def api_client(kubeconfig: str | None, context: str | None) -> Any:
    """An ApiClient for the kubeconfig and context, as kubectl takes them (in-cluster config when
    running in a pod without a kubeconfig)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
    except Exception as exc:  # ConfigException, missing file, bad YAML
        raise UserError(
            f"cannot load kubeconfig {kubeconfig or '(default)'} context {context or '(current)'}: {exc}",
            source="--kubeconfig",
        ) from None
    quiet_urllib3_retries()  # an unreachable API is said in one line, not in urllib3's retry warnings
    return client.ApiClient(configuration=configuration)


# -- read-only discovery ----------------------------------------------------------------------------


def as_documents(
    kind: str, api_version: str, items: Sequence[Any], serialize: Callable[[Any], Any]
) -> list[K8sObject]:
    """Typed list items (or custom-object dicts) as the dicts a snapshot holds, kind and apiVersion set."""
    out = []
    for item in items:
        obj = item if isinstance(item, dict) else serialize(item)
        out.append({**obj, "kind": kind, "apiVersion": obj.get("apiVersion") or api_version})
    return out


@contextlib.contextmanager
def reading(what: str) -> Iterator[None]:
    """API failures while reading ``what`` as one line (exit 2): 403 names the permission to grant; any
    other status or a connection failure says what could not be read. Never a traceback, never exit 1."""
    from kubernetes.client.rest import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as exc:
        if exc.status == 403:
            raise UserError(
                f"forbidden to read {what}: apply deploy/rbac-verify.yaml for this identity", source="RBAC"
            ) from None
        raise BackendUnavailable(f"the API server failed to read {what}: {_status_line(exc)}") from None
    except HTTPError as exc:  # refused, reset, timed out, after urllib3's own retries
        raise BackendUnavailable(f"the API server could not be reached to read {what}: {exc}") from None


def _status_line(exc: Any) -> str:
    """``500 Internal Server Error: etcdserver: leader changed``: the status and the Status message."""
    message = status_message(exc)
    return " ".join(f"{exc.status} {exc.reason or ''}: {message or ''}".split()).rstrip(":")


def served_versions(api: Any) -> dict[str, list[str]]:
    """Group -> served versions, the preferred one first (the discovery document at /apis)."""
    from kubernetes import client

    with reading("the API groups (/apis)"):
        groups = client.ApisApi(api).get_api_versions().groups or []
    served = {}
    for group in groups:
        preferred = group.preferred_version.version if group.preferred_version else None
        versions = [v.version for v in group.versions or []]
        served[group.name] = ([preferred] if preferred else []) + [v for v in versions if v != preferred]
    return served


def discover(api: Any, source: str, served: dict[str, list[str]] | None = None) -> ClusterView:
    """The cluster's state through list calls only (get/list verbs: nothing is written). Every optional
    kind is listed on its own: a group or kind the cluster does not serve (absent from discovery, or
    answering 404 as a half-installed set of CRDs does) is a note."""
    from kubernetes import client

    apis = {"core": client.CoreV1Api(api), "networking": client.NetworkingV1Api(api)}
    documents: list[K8sObject] = []
    listed = []
    for kind in kinds.CORE:
        which, method = CORE_LISTS[kind.kind]
        api_version = f"{kind.group}/{kind.versions[0]}" if kind.group else kind.versions[0]
        with reading(kind.shown):
            items = getattr(apis[which], method)().items
        documents += as_documents(kind.kind, api_version, items, api.sanitize_for_serialization)
        listed.append(kind.file_key)
    served = served_versions(api) if served is None else served
    custom = client.CustomObjectsApi(api)
    absent: list[kinds.Kind] = []
    for kind in kinds.OPTIONAL:
        version = kinds.pick_version(kind, served)
        if version is None:
            absent.append(kind)
            continue
        listing = _list_if_served(custom, kind, version)
        if listing is None:
            absent.append(kind)
            continue
        items = listing.get("items") or []
        documents += as_documents(kind.kind, f"{kind.group}/{version}", items, dict)
        listed.append(kind.file_key)
    view = view_from_objects(((source, d) for d in documents), source=source, listed_kinds=listed)
    view.notes.extend(not_served_notes(absent))
    return view


def _list_if_served(custom: Any, kind: kinds.Kind, version: str) -> dict | None:
    """The cluster-wide list of ``kind``, or None when the API answers 404 (the group is served but
    this kind's CRD is not installed, or was removed since discovery)."""
    from kubernetes.client.rest import ApiException

    with reading(kind.shown):
        try:
            return custom.list_cluster_custom_object(kind.group, version, kind.plural)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


def not_served_notes(absent: list[kinds.Kind]) -> list[str]:
    """One note per API group: the kinds of it the cluster does not serve."""
    by_group: dict[str, list[kinds.Kind]] = {}
    for kind in absent:
        by_group.setdefault(kind.group, []).append(kind)
    return [kinds.not_served_note(group) for group in by_group.values()]


def check_permissions(api: Any, served: dict[str, list[str]], *, probing: bool) -> None:
    """UserError listing the missing permissions verify cannot do without (the optional kinds' only
    for the groups the cluster serves)."""
    with reading("SelfSubjectAccessReviews"):
        missing = missing_permissions(api_review(api), required_permissions(probing=probing, groups=served))
    if missing:
        listed = "; ".join(str(p) for p in missing)
        raise UserError(
            f"missing permissions: {listed}. Apply deploy/rbac-verify.yaml for this identity", source="RBAC"
        )


# -- pure planning ----------------------------------------------------------------------------------


def new_run_id() -> str:
    return secrets.token_hex(4)


def scratch_namespace(run_id: str, role: str) -> K8sObject:
    """A namespace the run owns. Pod Security "restricted" is enforced in it: the probe pods meet it,
    and a stricter cluster-wide policy shows up here first, with a clear message."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": f"{SCRATCH_PREFIX}-{run_id}-{role}",
            "labels": {RUN_LABEL: run_id, "pod-security.kubernetes.io/enforce": "restricted"},
        },
    }


def deny_all_ingress(namespace: str, run_id: str) -> K8sObject:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "canary-deny-all", "namespace": namespace, "labels": {RUN_LABEL: run_id}},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def canary_objects(run_id: str, image: str) -> tuple[list[K8sObject], K8sObject]:
    """(namespace, server, client) and the deny-all policy applied once the baseline connected."""
    ns = scratch_namespace(run_id, "canary")
    name = ns["metadata"]["name"]
    server = agnhost.server_pod(
        name,
        "server",
        {"app": "canary-server"},
        [ContainerPort(CANARY_PORT, "TCP", "http")],
        image=image,
        run_id=run_id,
    )
    client = agnhost.client_pod(name, "client", {"app": "canary-client"}, image=image, run_id=run_id)
    return [ns, server, client], deny_all_ingress(name, run_id)


def canary_problem(baseline: Observation, denied: Sequence[Observation], cni: str) -> str | None:
    """Why the canary does not let us trust 'allowed' results, or None when the CNI enforced the deny-all."""
    if baseline.outcome is not Outcome.CONNECTED:
        return (
            "CNI canary: the probe client could not reach the canary server before any policy"
            f" ({baseline.outcome}: {baseline.detail})"
        )
    if any(o.outcome.reached for o in denied):
        return (
            "policies deployed but not enforced: this cluster's CNI does not enforce NetworkPolicy"
            f" (detected: {cni})"
        )
    errors = [o for o in denied if o.outcome is Outcome.ERROR]
    if errors:
        return f"CNI canary: the probe failed under deny-all ({errors[0].detail})"
    return None


def admission_advice(message: str, pod: str, namespace: str) -> str:
    """A rejected probe pod, explained: which Pod Security level (or webhook) said no, and what to do."""
    match = re.search(r'violates PodSecurity "([a-z]+)(?::([^"]+))?": (.*)', message)
    if match:
        level, version, why = match.group(1), match.group(2) or "latest", match.group(3)
        return (
            f"pod {namespace}/{pod} rejected by Pod Security admission: namespace {namespace} enforces level"
            f" '{level}' (version {version}): {why}. The probe pods are built to meet 'restricted' (non-root"
            " uid, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp); check the"
            f" namespace's pod-security.kubernetes.io/enforce-version label, or exempt the verify identity"
            " in the cluster's PodSecurity AdmissionConfiguration"
        )
    webhook = re.search(r'admission webhook "([^"]+)" denied the request: (.*)', message)
    if webhook:
        return (
            f"pod {namespace}/{pod} rejected by admission webhook {webhook.group(1)}: {webhook.group(2)}."
            " Allow the agnhost probe image (or pass --probe-image with an image your policy admits) and"
            f" pods labelled {RUN_LABEL} in the run's namespaces"
        )
    return f"pod {namespace}/{pod} rejected: {message}"


def plan_probes(
    cluster: Cluster, clients: Sequence[Pod], gim_namespace: str
) -> list[tuple[Probe, bool, str]]:
    """(probe, expected allowed, simulator reason) from each client to every GIM pod IP on every
    declared port, and to every GIM Service ClusterIP port whose endpoints all agree."""
    state = Cluster(cluster.namespaces, [*cluster.pods, *clients], cluster.services, cluster.policies)
    flows = plan_flows(state, [c.key for c in clients], gim_namespace, contract=None)
    return [(f.probe, f.expected.allowed, f.expected.reason) for f in flows]


# -- the run ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled) unwinds like Ctrl-C, so the finally blocks delete what the run made."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _apply(backend: Any, objects: Sequence[K8sObject]) -> None:
    try:
        backend.apply(objects)
    except RuntimeError as exc:
        text = str(exc)
        if "PodSecurity" in text or "admission webhook" in text:
            pod = next((o for o in objects if o["kind"] == "Pod"), None)
            if pod is not None:
                meta = pod["metadata"]
                raise UserError(
                    admission_advice(text, meta["name"], meta["namespace"]), source="admission"
                ) from None
        raise


def _key(obj: K8sObject) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def _wait_for_ips(backend: Any, namespaces: list[str], keys: list[str], timeout_s: float) -> Cluster:
    clock = backend.clock
    deadline = clock.now() + timeout_s
    while True:
        state = backend.state(namespaces)
        ips = {p.key: p.ip for p in state.pods}
        waiting = [k for k in keys if not ips.get(k)]
        if not waiting:
            return state
        if clock.now() >= deadline:
            raise RuntimeError(f"probe pods without an IP after {timeout_s:g}s: {', '.join(waiting)}")
        clock.sleep(2.0)


def verify_live(gim_namespace: str, options: LiveOptions, flow_logs: Sequence[FlowLog] = ()) -> Analysis:
    """Permissions, discovery, analysis (with the observed traffic of ``flow_logs``), canary and probes
    against the cluster of ``options``."""
    from conformance.backends.kube import KubeBackend

    try:
        backend = KubeBackend(options.kubeconfig, options.context, name="verify")
    except BackendUnavailable as exc:
        reason = str(exc).split("; pass --kubeconfig")[0]
        raise UserError(
            f"{reason}; pass --kubeconfig FILE --context NAME, or analyse a snapshot with --snapshot FILE",
            source="verify",
        ) from None
    try:
        served = served_versions(backend.api_client)
        check_permissions(backend.api_client, served, probing=True)
        source = f"cluster {options.context or '(current context)'}"
        view = discover(backend.api_client, source, served)
        analysis = analyse(view, gim_namespace, flow_logs)
        probe_cluster(backend, analysis, view, options, new_run_id())
        return analysis
    finally:
        backend.close()


def probe_cluster(
    backend: Any, analysis: Analysis, view: ClusterView, options: LiveOptions, run_id: str
) -> None:
    """Canary and probes on ``backend`` (a KubeBackend, or any Backend with ``detect_cni`` and
    ``delete_run``), recorded in ``analysis``; everything the run created is deleted on the way out."""
    image = options.image or agnhost.AGNHOST_IMAGE
    analysis.live = True
    stray_pods: list[K8sObject] = []
    with sigterm_as_interrupt():
        try:
            _run_probes(backend, analysis, view, run_id, image, options, stray_pods)
        except RuntimeError as exc:  # pods not ready, API errors: nothing was verified
            analysis.problems.insert(0, f"could not complete the probes: {exc}")
        finally:
            backend.delete(stray_pods)
            backend.delete_run(run_id)


def _run_probes(
    backend: Any,
    analysis: Analysis,
    view: ClusterView,
    run_id: str,
    image: str,
    options: LiveOptions,
    stray_pods: list[K8sObject],
) -> None:
    canary, deny = canary_objects(run_id, image)
    canary_ns = canary[0]["metadata"]["name"]
    _apply(backend, canary)
    backend.wait_ready([canary_ns], READY_TIMEOUT_S)
    state = backend.state([canary_ns])
    server = state.pod(f"{canary_ns}/server")
    probe = Probe(f"{canary_ns}/client", server.key, server.ip or "", CANARY_PORT)
    (baseline,) = backend.probe([probe], options.timeout_s)
    denied: list[Observation] = []
    if baseline.outcome is Outcome.CONNECTED:
        _apply(backend, [deny])
        # a policy takes a moment to be programmed; blocked must hold on two samples in a row
        deadline = backend.clock.now() + options.deadline_s
        while backend.clock.now() < deadline:
            # the baseline connected, so the canary server listens there: a refusal is a reject
            denied += [rejected(o) for o in backend.probe([probe], options.timeout_s)]
            if len(denied) >= 2 and all(o.outcome.blocked for o in denied[-2:]):
                denied = denied[-2:]
                break
    problem = canary_problem(baseline, denied, backend.detect_cni())
    if problem:
        analysis.problems.insert(0, problem)
        return  # no 'allowed' result can be trusted on this cluster
    analysis.cni_features, problems = check_cni_features(
        backend,
        view.cluster,
        analysis.gim_namespace,
        run_id,
        choice=options.cni_features,
        image=image,
        probe_timeout_s=options.timeout_s,
        deadline_s=options.deadline_s,
        ready_timeout_s=READY_TIMEOUT_S,
        prefix=f"{SCRATCH_PREFIX}-{run_id}",
    )
    analysis.problems.extend(problems)

    probe_ns = scratch_namespace(run_id, "probe")
    name = probe_ns["metadata"]["name"]
    objects = [probe_ns, agnhost.client_pod(name, "client", {}, image=image, run_id=run_id)]
    client_namespaces = [name]
    if options.probe_allowed_namespaces:
        for ns in analysis.inference.allowed_namespaces:
            if ns in view.cluster.namespaces:
                pod = agnhost.client_pod(ns, f"{SCRATCH_PREFIX}-{run_id}", {}, image=image, run_id=run_id)
                stray_pods.append(pod)
                client_namespaces.append(ns)
    _apply(backend, objects)
    for pod in stray_pods:
        _apply(backend, [pod])
    backend.wait_ready([name], READY_TIMEOUT_S)
    # wait_ready waits for every pod of a namespace: in the allowed namespaces only ours matter
    live = _wait_for_ips(backend, client_namespaces, [_key(p) for p in stray_pods], READY_TIMEOUT_S)
    clients = [p for p in live.pods if RUN_LABEL in p.labels and p.namespace in client_namespaces]
    cluster = view.cluster
    cluster.add_namespace(live.namespaces[name])
    planned = plan_probes(cluster, clients, analysis.gim_namespace)
    samples = observe(
        backend,
        [p for p, _, _ in planned],
        [allowed for _, allowed, _ in planned],
        probe_timeout_s=options.timeout_s,
        deadline_s=options.deadline_s,
    )
    for (probe, expected, reason), obs in zip(planned, samples, strict=True):
        last = obs[-1]
        ok = settled(expected, obs)
        detail = last.detail
        # GIM's own pods: whether one listens on a port is not known, so a refusal is either nothing
        # listening or a CNI that rejects instead of dropping (kube-router): unknown, never allowed.
        unknown = not ok and last.outcome is Outcome.REFUSED
        if unknown:
            detail = (
                f"unknown: refused (nothing listens there, or the CNI rejects denied connections); {detail}"
            )
        if last.outcome is Outcome.ERROR:
            detail = f"{detail}\n{backend.diagnose(probe.client)}"
        analysis.probes.append(
            ProbeRecord(
                client=probe.client,
                target=probe.target,
                host=probe.host,
                port=probe.port,
                protocol=probe.protocol,
                via=probe.via,
                expected_allowed=expected,
                reason=reason,
                outcome="unknown" if unknown else str(last.outcome),
                agrees=ok,
                latency_s=last.latency_s,
                repro=backend.repro(probe, options.timeout_s),
                detail=detail,
            )
        )
        if unknown:
            analysis.notes.append(
                f"probe {probe.client} -> {probe.target}:{probe.port}/{probe.protocol} via {probe.via}:"
                " refused, not checked (nothing listens there, or the CNI rejects denied connections)"
            )
        elif not ok:
            expected_word = "allowed" if expected else "blocked"
            analysis.problems.append(
                f"probe {probe.client} -> {probe.target}:{probe.port}/{probe.protocol} via {probe.via}:"
                f" expected {expected_word}, observed {last.outcome} ({reason})"
            )
    explain_probes(analysis, cluster, clients)

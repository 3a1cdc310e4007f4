"""The live run of ``gim-netpol verify``: permissions, read-only discovery, CNI canary, probes.

It cannot run on a machine without a cluster; what decides is the same code as the snapshot path
(``analyse``), and the pure parts here (object conversion, probe planning, canary verdict, admission
advice) are tested without one. Kubernetes client usage follows the python client's documentation
(github.com/kubernetes-client/python, v29+; this project pins 37): ``config.load_kube_config`` /
``load_incluster_config``, ``CoreV1Api.list_*_for_all_namespaces``, ``NetworkingV1Api.list_ingress_class``,
``CustomObjectsApi.list_cluster_custom_object(group, version, plural)`` (returns a dict),
``ApisApi.get_api_versions`` for the groups the server serves, and
``ApiClient.sanitize_for_serialization`` to turn models into the dicts ``kubectl get -o json`` prints.

Safety: nothing is written in the GIM namespace. Namespaced (the CLI's default, see ``placement``),
the run writes only in the probe namespaces given and (opt-in ``--probe-allowed-namespaces``) one
short-lived client pod per allowed namespace; cluster-wide, in namespaces it creates and those pods.
Everything the run creates carries ``conformance.gitguardian.com/run=<run id>`` and is deleted in a
``finally`` (Ctrl-C included; SIGTERM is turned into the same path); ``gim-netpol cleanup`` removes what
a killed run left. An RBAC refusal (403 naming the verb and resource) stops the run with one line.
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
from conformance.netpol.model import Cluster, K8sObject, Pod
from conformance.netpol.probing import Observation, Outcome, Probe, rejected
from conformance.probes import agnhost
from conformance.suite.cni_features import apply_each, chosen, needed_features
from conformance.suite.flows import plan_flows
from conformance.suite.probe_namespaces import ProbeNamespaces
from conformance.suite.verdicts import observe, settled
from conformance.verify import kinds
from conformance.verify.analysis import Analysis, ProbeRecord, analyse
from conformance.verify.cni_features import check_cni_features, explain_probes
from conformance.verify.discovery import ClusterView, view_from_objects
from conformance.verify.flowlogs import FlowLog
from conformance.verify.own import leave_out_own_namespaces
from conformance.verify.placement import CANARY_PORT, Placement, planned_objects
from conformance.verify.rbac import api_review, missing_permissions, missing_rule, required_permissions

RUN_LABEL = agnhost.RUN_LABEL
READY_TIMEOUT_S = 180.0
NO_PROBES_NOTE = (
    "read-only (--no-probes): nothing was probed and nothing created; the verdicts are the simulator's"
    " on the policies read, the CNI was not checked"
)

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
    probe_namespaces: ProbeNamespaces | None = None  # None: cluster-wide (the run creates namespaces)
    probes: bool = True  # False: read-only (--no-probes), nothing created

    @property
    def mode(self) -> str:
        if not self.probes:
            return "read-only"
        return "cluster-wide" if self.probe_namespaces is None else "namespaced"


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
            message = status_message(exc) or ""
            rule = missing_rule(message)
            raise UserError(
                f"forbidden to read {what}: {rule or message or 'HTTP 403'}; apply what `gim-netpol rbac`"
                " prints for this identity (deploy/rbac-verify.yaml for --cluster-wide)",
                source="RBAC",
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


def check_permissions(
    api: Any, served: dict[str, list[str]], mode: str, objects: Sequence[K8sObject] = (), *, beyond: str = ""
) -> None:
    """UserError listing the missing permissions verify cannot do without in ``mode`` (the optional
    kinds' only for the groups the cluster serves; namespaced: for the ``objects`` the run creates),
    leaving out those of mode ``beyond`` (checked already)."""
    checked = set(required_permissions(beyond, groups=served)) if beyond else set()
    needed = [p for p in required_permissions(mode, groups=served, objects=objects) if p not in checked]
    with reading("SelfSubjectAccessReviews"):
        missing = missing_permissions(api_review(api), needed)
    if missing:
        listed = "; ".join(str(p) for p in missing)
        raise UserError(
            f"missing permissions: {listed}. Apply what `gim-netpol rbac --mode {mode}` prints for this"
            " identity",
            source="RBAC",
        )


# -- pure planning ----------------------------------------------------------------------------------


def new_run_id() -> str:
    return secrets.token_hex(4)


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


def _apply(backend: Any, objects: Sequence[K8sObject], created: list[K8sObject]) -> None:
    """Apply, one object at a time; each one the API accepted is added to ``created``."""
    try:
        apply_each(backend, objects, created)
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
        check_permissions(backend.api_client, served, "read-only")
        source = f"cluster {options.context or '(current context)'}"
        view = discover(backend.api_client, source, served)
        if options.probe_namespaces is not None:
            options.probe_namespaces.check(view.cluster.namespaces)
        view = leave_out_own_namespaces(view)
        analysis = analyse(view, gim_namespace, flow_logs)
        if not options.probes:
            analysis.notes.insert(0, NO_PROBES_NOTE)
            return analysis
        placement = Placement(new_run_id(), options.image or agnhost.AGNHOST_IMAGE, options.probe_namespaces)
        planned = plan_run(placement, analysis, view, options)
        check_permissions(backend.api_client, served, options.mode, planned, beyond="read-only")
        where = (
            f"in the probe namespaces {', '.join(options.probe_namespaces.names)}"
            if options.probe_namespaces is not None
            else "in namespaces of the run's own, deleted at the end"
        )
        analysis.notes.insert(0, f"{options.mode} run {placement.run_id}: canaries and probe clients {where}")
        probe_cluster(backend, analysis, view, options, placement.run_id)
        return analysis
    finally:
        backend.close()


def plan_run(
    placement: Placement, analysis: Analysis, view: ClusterView, options: LiveOptions
) -> list[K8sObject]:
    """What a namespaced run will create (the permissions it needs come from it); [] cluster-wide."""
    if not placement.namespaced:
        return []
    from conformance.backends.model import ModelBackend  # an empty in-memory cluster to plan on

    return planned_objects(
        placement,
        chosen(options.cni_features, needed_features(view.cluster.policies_in(analysis.gim_namespace))),
        allowed_clients(analysis, view, options),
        ModelBackend(),
    )


def allowed_clients(analysis: Analysis, view: ClusterView, options: LiveOptions) -> list[str]:
    """The allowed namespaces a client pod probes from (``--probe-allowed-namespaces``): those that exist."""
    if not options.probe_allowed_namespaces:
        return []
    return [ns for ns in analysis.inference.allowed_namespaces if ns in view.cluster.namespaces]


def rejected_and_rate_limited(expected_allowed: bool, samples: Sequence[Observation]) -> bool:
    """A flow expected blocked whose last two samples were a refusal and a timeout: a CNI that rejects
    denied connections (kube-router) from a node whose kernel rate-limits its ICMP answers
    (backends/model_icmp.py) refuses some and leaves the others unanswered. Neither got through, and the
    timeout shows the port did not answer: blocked, as expected."""
    last_two = [o.outcome for o in samples[-2:]]
    return (
        not expected_allowed
        and len(last_two) == 2
        and all(o is Outcome.REFUSED or o.blocked for o in last_two)
        and any(o.blocked for o in last_two)
    )


def probe_cluster(
    backend: Any, analysis: Analysis, view: ClusterView, options: LiveOptions, run_id: str
) -> None:
    """Canary and probes on ``backend`` (a KubeBackend, or any Backend with ``detect_cni`` and
    ``delete_run``), recorded in ``analysis``; everything the run created is deleted on the way out."""
    placement = Placement(run_id, options.image or agnhost.AGNHOST_IMAGE, options.probe_namespaces)
    analysis.live = True
    created: list[K8sObject] = []  # deleted at the end (cluster-wide: the pods outside its namespaces)
    with sigterm_as_interrupt():
        try:
            _run_probes(backend, analysis, view, placement, options, created)
        except RuntimeError as exc:  # pods not ready, API errors: nothing was verified
            analysis.problems.insert(0, f"could not complete the probes: {exc}")
        finally:
            backend.delete(leftovers(created))
            if not placement.namespaced:
                backend.delete_run(run_id)


def leftovers(created: Sequence[K8sObject]) -> list[K8sObject]:
    """What to delete at the end, last created first: objects in namespaces the run did not create (those
    it created go with them, through ``delete_run``)."""
    own = {o["metadata"]["name"] for o in created if o["kind"] == "Namespace"}
    return [
        o for o in reversed(created) if o["kind"] != "Namespace" and o["metadata"]["namespace"] not in own
    ]


def _run_probes(
    backend: Any,
    analysis: Analysis,
    view: ClusterView,
    placement: Placement,
    options: LiveOptions,
    created: list[K8sObject],
) -> None:
    canary, deny = placement.canary()
    server_obj, client_obj = (o for o in canary if o["kind"] == "Pod")
    canary_namespaces = sorted({_key(o).split("/")[0] for o in (server_obj, client_obj)})
    _apply(backend, canary, created)
    backend.wait_ready(canary_namespaces, READY_TIMEOUT_S)
    state = backend.state(canary_namespaces)
    server = state.pod(_key(server_obj))
    probe = Probe(_key(client_obj), server.key, server.ip or "", CANARY_PORT)
    (baseline,) = backend.probe([probe], options.timeout_s)
    denied: list[Observation] = []
    if baseline.outcome is Outcome.CONNECTED:
        _apply(backend, [deny], created)
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
        placement.layout(),
        choice=options.cni_features,
        image=placement.image,
        probe_timeout_s=options.timeout_s,
        deadline_s=options.deadline_s,
        ready_timeout_s=READY_TIMEOUT_S,
    )
    analysis.problems.extend(problems)

    objects = placement.probe_client()
    name = _key(objects[-1]).split("/")[0]
    allowed = [placement.allowed_client(ns) for ns in allowed_clients(analysis, view, options)]
    client_namespaces = [name, *(o["metadata"]["namespace"] for o in allowed)]
    _apply(backend, [*objects, *allowed], created)
    ours = [_key(o) for o in objects if o["kind"] == "Pod"] + [_key(p) for p in allowed]
    backend.wait_ready([name], READY_TIMEOUT_S)
    # wait_ready waits for every pod of a namespace: in the allowed namespaces only ours matter
    live = _wait_for_ips(backend, client_namespaces, ours, READY_TIMEOUT_S)
    clients = [p for p in live.pods if p.key in ours]
    cluster = view.cluster
    cluster.add_namespace(live.namespaces[name])
    planned = plan_probes(cluster, clients, analysis.gim_namespace)
    samples = observe(
        backend,
        [p for p, _, _ in planned],
        [allowed for _, allowed, _ in planned],
        probe_timeout_s=options.timeout_s,
        deadline_s=options.deadline_s,
        settles=lambda expected, obs: settled(expected, obs) or rejected_and_rate_limited(expected, obs),
    )
    for (probe, expected, reason), obs in zip(planned, samples, strict=True):
        last = obs[-1]
        ok = settled(expected, obs) or rejected_and_rate_limited(expected, obs)
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

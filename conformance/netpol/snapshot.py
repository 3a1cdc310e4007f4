"""Cluster snapshots: the objects ``kubectl get ns,pods,svc,netpol -A -o yaml|json`` prints, as a Cluster.

A snapshot is YAML (one ``kind: List`` or a multi-document stream) or JSON. Parsing is a plain loop
over the parsed dicts, with no schema validation of every object: the benchmark snapshot holds
5,000 pods and 1,000 policies and the whole ``simulate`` has 3 seconds.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import yaml

from conformance.errors import UserError
from conformance.netpol import yaml_guard
from conformance.netpol.model import (
    PROTOCOLS,
    Cluster,
    ContainerPort,
    K8sObject,
    Namespace,
    Pod,
    Service,
    ServicePort,
)

STDIN = "-"
STDIN_NAME = "<stdin>"
FIRST_CHAR = re.compile(r"\S")  # JSON starts with { or [; YAML (even a comment) does not
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Pods that ran to completion keep their object (and, for a while, their IP, which the kubelet may
# hand to a new pod): they take no traffic.
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})

Notes = Callable[[str], None]


def source_name(path: str) -> str:
    return STDIN_NAME if path == STDIN else path


def read_documents(path: str) -> list[K8sObject]:
    """The Kubernetes objects of a YAML or JSON file (``-`` for stdin), ``*List`` objects flattened."""
    source = source_name(path)
    try:
        if path == STDIN:
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise UserError(f"cannot read the snapshot: {reason}", source=source) from None
    return parse_documents(text, source)


def parse_documents(text: str, source: str) -> list[K8sObject]:
    first = FIRST_CHAR.search(text)
    is_json = first is not None and first.group() in "{["
    docs = _parse_json(text, source) if is_json else _parse_yaml(text, source)
    objects: list[K8sObject] = []
    for index, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise UserError(
                f"document {index} is a {_type_name(doc)}, not a Kubernetes object (a mapping)", source=source
            )
        _flatten(doc, source, objects)
    return objects


def _parse_json(text: str, source: str) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(
            f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", source=source
        ) from None
    # A top-level JSON array is taken as a stream of documents.
    return data if isinstance(data, list) else [data]


def _parse_yaml(text: str, source: str) -> list[Any]:
    try:
        return list(yaml_guard.load_all(text, YAML_LOADER, source))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise UserError(f"invalid YAML{where}: {problem}", source=source) from None


def _flatten(doc: K8sObject, source: str, out: list[K8sObject]) -> None:
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
        items = doc["items"] or []
        if not isinstance(items, list):
            raise UserError(f"{kind}.items must be a list", source=source)
        # A typed list from the API (PodList) leaves out its items' kind; kubectl's `kind: List` keeps it.
        item_kind = kind[: -len("List")] or None
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise UserError(
                    f"{kind}.items[{index}] is a {_type_name(item)}, not a Kubernetes object", source=source
                )
            if item_kind and "kind" not in item:
                item["kind"] = item_kind
            _flatten(item, source, out)
    else:
        out.append(doc)


def _type_name(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


class _Builder:
    """Turns (source, object) pairs into a Cluster, checking only what the simulation relies on."""

    def __init__(self, default_namespace: str | None) -> None:
        self.default_namespace = default_namespace or "default"
        self.cluster = Cluster()
        self.seen: dict[tuple[str, str, str], str] = {}
        self.skipped: Counter[str] = Counter()
        self.finished_pods = 0
        self.origins: dict[str, str] = {}

    def add(self, source: str, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise UserError(
                f"expected a Kubernetes object (a mapping), got a {_type_name(obj)}", source=source
            )
        kind = obj.get("kind")
        handler = self.HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            self.skipped[str(kind) if kind else "<no kind>"] += 1
            return
        meta = obj.get("metadata")
        if meta is None:
            meta = {}
        elif not isinstance(meta, dict):
            raise UserError("metadata must be a mapping", source=source, key=_describe(obj))
        name = meta.get("name")
        if not name or not isinstance(name, str):
            raise UserError("metadata.name is required", source=source, key=_describe(obj))
        namespace = None
        if kind != "Namespace":
            namespace = meta.get("namespace") or self.default_namespace
            if not isinstance(namespace, str):
                raise UserError("metadata.namespace must be a string", source=source, key=_describe(obj))
        identity = (kind, namespace or "", name)
        first = self.seen.get(identity)
        key = f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"
        if first is not None:
            where = "earlier in this file" if first == source else f"also in {first}"
            raise UserError(f"duplicate object ({where})", source=source, key=key)
        self.seen[identity] = source
        self.origins[key] = source
        handler(self, source, key, obj, meta, name, namespace)

    def _namespace(self, source: str, key: str, obj: K8sObject, meta: dict, name: str, _ns: None) -> None:
        self.cluster.add_namespace(Namespace(name, _labels(meta, source, key)))

    def _pod(self, source: str, key: str, obj: K8sObject, meta: dict, name: str, namespace: str) -> None:
        spec = _mapping(obj, "spec", source, key)
        status = _mapping(obj, "status", source, key)
        if status.get("phase") in FINISHED_PHASES:
            self.finished_pods += 1
            return
        ports: list[ContainerPort] = []
        containers = spec.get("containers") or []
        if not isinstance(containers, list):
            raise UserError("spec.containers must be a list", source=source, key=key)
        for ci, container in enumerate(containers):
            if not isinstance(container, dict):
                raise UserError(f"spec.containers[{ci}] must be a mapping", source=source, key=key)
            for pi, port in enumerate(container.get("ports") or ()):
                path = f"spec.containers[{ci}].ports[{pi}]"
                if not isinstance(port, dict):
                    raise UserError(f"{path} must be a mapping", source=source, key=key)
                ports.append(
                    ContainerPort(
                        _port_number(port.get("containerPort"), f"{path}.containerPort", source, key),
                        _protocol(port.get("protocol"), f"{path}.protocol", source, key),
                        port.get("name") or None,
                    )
                )
        ip = status.get("podIP") or None
        if ip is not None:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise UserError(f"status.podIP {ip!r} is not an IP address", source=source, key=key) from None
        self.cluster.pods.append(
            Pod(
                namespace=namespace,
                name=name,
                labels=_labels(meta, source, key),
                ip=ip,
                ports=tuple(ports),
                host_network=bool(spec.get("hostNetwork")),
                node=spec.get("nodeName") or None,
            )
        )

    def _service(self, source: str, key: str, obj: K8sObject, meta: dict, name: str, namespace: str) -> None:
        spec = _mapping(obj, "spec", source, key)
        selector = spec.get("selector") or {}
        if not isinstance(selector, dict):
            raise UserError("spec.selector must be a mapping", source=source, key=key)
        ports: list[ServicePort] = []
        for pi, port in enumerate(spec.get("ports") or ()):
            path = f"spec.ports[{pi}]"
            if not isinstance(port, dict):
                raise UserError(f"{path} must be a mapping", source=source, key=key)
            number = _port_number(port.get("port"), f"{path}.port", source, key)
            target = port.get("targetPort", number)
            if isinstance(target, str) and not target.isdigit():
                if not target:
                    raise UserError(f"{path}.targetPort must not be empty", source=source, key=key)
            else:
                target = _port_number(target, f"{path}.targetPort", source, key)
            protocol = _protocol(port.get("protocol"), f"{path}.protocol", source, key)
            ports.append(ServicePort(number, target, protocol, port.get("name") or None))
        cluster_ip = spec.get("clusterIP") or None
        if cluster_ip == "None":  # a headless Service
            cluster_ip = None
        self.cluster.services.append(
            Service(namespace, name, {str(k): str(v) for k, v in selector.items()}, tuple(ports), cluster_ip)
        )

    def _policy(self, source: str, key: str, obj: K8sObject, meta: dict, name: str, namespace: str) -> None:
        if meta.get("namespace") != namespace:
            obj = {**obj, "metadata": {**meta, "namespace": namespace}}
        self.cluster.policies.append(obj)

    HANDLERS: dict[str, Callable[..., None]] = {
        "Namespace": _namespace,
        "Pod": _pod,
        "Service": _service,
        "NetworkPolicy": _policy,
    }

    def finish(self, notes: Notes | None) -> Cluster:
        cluster = self.cluster
        for pod in cluster.pods:
            cluster.ensure_namespace(pod.namespace)
        for svc in cluster.services:
            cluster.ensure_namespace(svc.namespace)
        for policy in cluster.policies:
            cluster.ensure_namespace(policy["metadata"]["namespace"])
        if notes is not None:
            for kind, count in sorted(self.skipped.items()):
                notes(f"skipped {count} {kind} object{'s' if count != 1 else ''}")
            if self.finished_pods:
                s = "s" if self.finished_pods != 1 else ""
                notes(f"skipped {self.finished_pods} finished pod{s} (phase Succeeded or Failed)")
        return cluster


def _describe(obj: K8sObject) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) and meta.get("name") else "<unnamed>"
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else None
    return "/".join(p for p in (str(obj.get("kind")), namespace, name) if p)


def _mapping(obj: K8sObject, field: str, source: str, key: str) -> dict:
    value = obj.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{field} must be a mapping", source=source, key=key)
    return value


def _labels(meta: dict, source: str, key: str) -> dict[str, str]:
    labels = meta.get("labels")
    if not labels:
        return {}
    if not isinstance(labels, dict):
        raise UserError("metadata.labels must be a mapping", source=source, key=key)
    for k, v in labels.items():
        if not isinstance(v, str):
            raise UserError(
                f"metadata.labels.{k} must be a string (quote it), got {v!r}", source=source, key=key
            )
    return labels


def _port_number(value: Any, path: str, source: str, key: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if type(value) is not int or not 1 <= value <= 65535:
        raise UserError(
            f"{path} must be a port number from 1 to 65535, got {value!r}", source=source, key=key
        )
    return value


def _protocol(value: Any, path: str, source: str, key: str) -> str:
    if value is None:
        return "TCP"
    if value not in PROTOCOLS:
        raise UserError(
            f"{path} must be one of {', '.join(PROTOCOLS)}, got {value!r}", source=source, key=key
        )
    return value


def cluster_from_objects(
    objects: Iterable[tuple[str, K8sObject]],
    *,
    notes: Notes | None = None,
    default_namespace: str | None = None,
    origins: dict[str, str] | None = None,
) -> Cluster:
    """The Cluster made of (source, object) pairs: Namespaces, Pods, Services and NetworkPolicies.

    Other kinds are skipped, with one note per kind. ``origins``, if given, is filled with
    ``Kind/namespace/name`` -> source, so later errors can name the file an object came from.
    """
    builder = _Builder(default_namespace)
    add = builder.add
    for source, obj in objects:
        add(source, obj)
    if origins is not None:
        origins.update(builder.origins)
    return builder.finish(notes)


def load_snapshot(paths: Sequence[str], notes: Notes | None = None) -> tuple[Cluster, dict[str, str]]:
    """The Cluster of the snapshot files, and where each object came from (``Kind/ns/name`` -> file)."""
    if list(paths).count(STDIN) > 1:
        raise UserError("stdin ('-') can be read only once", source=STDIN_NAME)
    origins: dict[str, str] = {}
    pairs = ((source_name(path), obj) for path in paths for obj in read_documents(path))
    return cluster_from_objects(pairs, notes=notes, origins=origins), origins


def load_cluster(paths: Sequence[str], notes: Notes | None = None) -> Cluster:
    """The Cluster of the snapshot files (``-`` for stdin)."""
    return load_snapshot(paths, notes)[0]

"""Validate a NetworkPolicy object as the API server would before GIM's chart can apply it.

Two layers:
- the real Kubernetes OpenAPI schema, from the ``kubernetes-validate`` package (its "-local-strict"
  JSON schemas: unknown fields are errors), pinned to ``SCHEMA_VERSION`` so results do not change with the
  installed package;
- the checks the schema cannot express, from the API server's own validation
  (kubernetes/kubernetes ``pkg/apis/networking/validation/validation.go``: ``ValidateNetworkPolicySpec``,
  ``ValidateNetworkPolicyPort``, ``ValidateNetworkPolicyPeer``, ``ValidateIPBlock``; label selectors as
  ``apimachinery/pkg/apis/meta/v1/validation.ValidateLabelSelector``): apiVersion and kind, a DNS-1123
  subdomain name, protocols, port numbers and names, endPort, peers, CIDRs, selector operators, label syntax.

Every failure is a ``UserError`` naming the source and the full key path of the offending field.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema
import referencing

from conformance.errors import UserError

# 1.31 is the oldest schema every kubernetes-validate>=1.31 ships; it still requires spec.podSelector,
# so a policy valid here is valid on every cluster from 1.31 on.
SCHEMA_VERSION = "1.31.0"
API_VERSION = "networking.k8s.io/v1"
KIND = "NetworkPolicy"
PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_PORT_NAME = re.compile(r"[-a-z0-9]+")


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    """The compiled NetworkPolicy schema (loaded once per process: the definitions file is 2 MB)."""
    folder = (
        resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{SCHEMA_VERSION}-local-strict"
    )
    schema = json.loads((folder / "networkpolicy-networking-v1.json").read_text())
    definitions = json.loads((folder / "_definitions.json").read_text())
    registry = referencing.Registry().with_resources(
        [
            (schema["$id"], referencing.Resource.from_contents(schema)),
            (definitions["$id"], referencing.Resource.from_contents(definitions)),
        ]
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_network_policy(obj: Mapping, source: str, key: str) -> None:
    """Raise ``UserError(source=source, key=key + path)`` unless ``obj`` is a valid NetworkPolicy."""
    if not isinstance(obj, Mapping):
        raise UserError(
            f"must be a NetworkPolicy object (a mapping), not {_describe(obj)}", source=source, key=key
        )
    _check_identity(obj, source, key)
    _check_schema(obj, source, key)
    _check_spec(obj["spec"], source, f"{key}.spec")


def _fail(message: str, source: str, key: str) -> UserError:
    return UserError(message, source=source, key=key)


def _check_identity(obj: Mapping, source: str, key: str) -> None:
    if obj.get("apiVersion") != API_VERSION:
        raise _fail(
            f"must be {API_VERSION}, not {_describe(obj.get('apiVersion'))}{_misspelt(obj, 'apiVersion')}",
            source,
            f"{key}.apiVersion",
        )
    if obj.get("kind") != KIND:
        raise _fail(
            f"must be {KIND}, not {_describe(obj.get('kind'))}{_misspelt(obj, 'kind')}", source, f"{key}.kind"
        )
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        raise _fail(
            f"is required (a mapping with at least a name){_misspelt(obj, 'metadata')}",
            source,
            f"{key}.metadata",
        )
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(f"is required{_misspelt(metadata, 'name')}", source, f"{key}.metadata.name")
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
        raise _fail(
            f"{name!r} is not a valid name (a DNS-1123 subdomain: lowercase letters, digits, '-' and '.',"
            " starting and ending with a letter or digit, at most 253 characters)",
            source,
            f"{key}.metadata.name",
        )
    namespace = metadata.get("namespace")
    if namespace is not None and (
        not isinstance(namespace, str) or len(namespace) > 63 or not re.fullmatch(_DNS1123_LABEL, namespace)
    ):
        raise _fail(f"{namespace!r} is not a valid namespace name", source, f"{key}.metadata.namespace")
    if not isinstance(obj.get("spec"), Mapping):
        raise _fail(
            f"is required (a NetworkPolicy spec mapping){_misspelt(obj, 'spec')}", source, f"{key}.spec"
        )


def _misspelt(mapping: Mapping, field: str) -> str:
    """A hint when ``field`` is missing but a key that looks like a typo of it is present."""
    if mapping.get(field) is not None:
        return ""
    others = [str(k) for k in mapping if k != field]
    typo = difflib.get_close_matches(field, others, n=1, cutoff=0.75) or [
        k for k in others if k.lower() == field.lower()
    ]
    return f" (found {typo[0]!r}: a typo of {field!r}?)" if typo else ""


def _check_schema(obj: Mapping, source: str, key: str) -> None:
    errors = list(_validator().iter_errors(obj))
    if not errors:
        return
    # An unknown field is usually a typo that also explains a missing required one: report it first.
    unknown_fields = [e for e in errors if e.validator == "additionalProperties"]
    error = jsonschema.exceptions.best_match(unknown_fields or errors)
    path = key + _format_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = list((error.schema.get("properties") or {}).keys())
        unknown = sorted(str(k) for k in error.instance if k not in known)
        if unknown:
            close = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(known)}"
            raise _fail(f"unknown field{hint}", source, f"{path}.{unknown[0]}")
    message = error.message
    if error.validator in ("oneOf", "anyOf"):  # IntOrString: say which types are accepted
        types = [t for sub in error.validator_value for t in _types(sub) if t != "null"]
        message = f"{error.instance!r} is not of type {' or '.join(map(repr, types))}"
    raise _fail(f"does not match the Kubernetes {SCHEMA_VERSION} schema: {message}", source, path)


def _types(schema: Mapping) -> list[str]:
    kind = schema.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def _format_path(parts: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


# -- the API server's checks (validation.go) ---------------------------------------------------------------


def _check_spec(spec: Mapping, source: str, key: str) -> None:
    _check_selector(spec.get("podSelector"), source, f"{key}.podSelector")
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for r, rule in enumerate(spec.get(direction) or ()):
            rule_key = f"{key}.{direction}[{r}]"
            for p, port in enumerate((rule or {}).get("ports") or ()):
                _check_port(port or {}, source, f"{rule_key}.ports[{p}]")
            for p, peer in enumerate((rule or {}).get(peers_key) or ()):
                _check_peer(peer or {}, source, f"{rule_key}.{peers_key}[{p}]")
    types = spec.get("policyTypes") or []
    if len(types) > len(POLICY_TYPES):
        raise _fail("may not specify more than two policyTypes", source, f"{key}.policyTypes")
    for i, policy_type in enumerate(types):
        if policy_type not in POLICY_TYPES:
            raise _fail(f"{policy_type!r} is not one of Ingress, Egress", source, f"{key}.policyTypes[{i}]")


def _check_port(port: Mapping, source: str, key: str) -> None:
    protocol = port.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        raise _fail(f"{protocol!r} is not one of TCP, UDP, SCTP", source, f"{key}.protocol")
    number, end = port.get("port"), port.get("endPort")
    if isinstance(number, float):
        raise _fail(f"{number} is not a port number (an integer) or a port name", source, f"{key}.port")
    if isinstance(end, float):
        raise _fail(f"{end} is not a port number (an integer)", source, f"{key}.endPort")
    if number is None:
        if end is not None:
            raise _fail("may not be specified when `port` is not specified", source, f"{key}.endPort")
    elif isinstance(number, int):
        if not 1 <= number <= 65535:
            raise _fail(f"{number} is not a port number (1-65535)", source, f"{key}.port")
        if end is not None:
            if end < number:
                raise _fail("must be greater than or equal to `port`", source, f"{key}.endPort")
            if end > 65535:
                raise _fail(f"{end} is not a port number (1-65535)", source, f"{key}.endPort")
    else:
        if end is not None:
            raise _fail("may not be specified when `port` is non-numeric", source, f"{key}.endPort")
        problem = port_name_problem(number)
        if problem:
            raise _fail(f"{number!r} is not a valid port name: {problem}", source, f"{key}.port")


def port_name_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA_SVC_NAME (as apimachinery's IsValidPortName), or None."""
    if not 1 <= len(name) <= 15:
        return "must be 1 to 15 characters"
    if not _PORT_NAME.fullmatch(name):
        return "must contain only lowercase letters, digits and '-'"
    if not re.search(r"[a-z]", name):
        return "must contain at least one letter"
    if "--" in name:
        return "must not contain consecutive hyphens"
    if name.startswith("-") or name.endswith("-"):
        return "must not begin or end with a hyphen"
    return None


def _check_peer(peer: Mapping, source: str, key: str) -> None:
    present = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None]
    if not present:
        raise _fail("must specify a peer (podSelector, namespaceSelector or ipBlock)", source, key)
    if "ipBlock" in present and len(present) > 1:
        raise _fail("may not specify both ipBlock and another peer", source, key)
    for selector in ("podSelector", "namespaceSelector"):
        if selector in present:
            _check_selector(peer[selector], source, f"{key}.{selector}")
    if "ipBlock" in present:
        _check_ip_block(peer["ipBlock"], source, f"{key}.ipBlock")


def _check_ip_block(block: Mapping, source: str, key: str) -> None:
    cidr = block.get("cidr")
    if not cidr:
        raise _fail("is required", source, f"{key}.cidr")
    network = _parse_cidr(cidr, source, f"{key}.cidr")
    for i, text in enumerate(block.get("except") or ()):
        excluded = _parse_cidr(text, source, f"{key}.except[{i}]")
        if (
            excluded.version != network.version
            or not excluded.subnet_of(network)  # type: ignore[arg-type]
            or excluded.prefixlen <= network.prefixlen
        ):
            raise _fail(f"{text!r} must be a strict subset of `cidr` {cidr!r}", source, f"{key}.except[{i}]")


def _parse_cidr(text: Any, source: str, key: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(text, str) or "/" not in text:
        raise _fail(f"{text!r} is not a CIDR (e.g. 10.0.0.0/24)", source, key)
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise _fail(f"{text!r} is not a valid CIDR: {exc}", source, key) from None


def _check_selector(selector: Any, source: str, key: str) -> None:
    if not isinstance(selector, Mapping):
        return  # absent: the schema has already checked the type
    for label, value in (selector.get("matchLabels") or {}).items():
        _check_label_key(label, source, f"{key}.matchLabels.{label}")
        if not _valid_label_value(value):
            raise _fail(f"{value!r} is not a valid label value", source, f"{key}.matchLabels.{label}")
    for i, requirement in enumerate(selector.get("matchExpressions") or ()):
        item_key = f"{key}.matchExpressions[{i}]"
        requirement = requirement or {}
        operator, values = requirement.get("operator"), requirement.get("values") or []
        _check_label_key(requirement.get("key"), source, f"{item_key}.key")
        if operator not in OPERATORS:
            raise _fail(f"{operator!r} is not one of {', '.join(OPERATORS)}", source, f"{item_key}.operator")
        if operator in ("In", "NotIn") and not values:
            raise _fail(f"must be specified when `operator` is {operator!r}", source, f"{item_key}.values")
        if operator in ("Exists", "DoesNotExist") and values:
            raise _fail(f"may not be specified when `operator` is {operator!r}", source, f"{item_key}.values")
        for v, value in enumerate(values):
            if not _valid_label_value(value):
                raise _fail(f"{value!r} is not a valid label value", source, f"{item_key}.values[{v}]")


def _check_label_key(label: Any, source: str, key: str) -> None:
    """A qualified name: an optional DNS-1123 subdomain prefix and '/', then a name of at most 63 chars."""
    parts = label.split("/") if isinstance(label, str) else []
    name = parts[-1] if parts else ""
    prefix_ok = len(parts) == 1 or (
        len(parts) == 2 and 0 < len(parts[0]) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(parts[0]) is not None
    )
    if not (prefix_ok and 0 < len(name) <= 63 and _LABEL_NAME.fullmatch(name)):
        raise _fail(f"{label!r} is not a valid label key", source, key)


def _valid_label_value(value: Any) -> bool:
    return isinstance(value, str) and (
        value == "" or (len(value) <= 63 and _LABEL_NAME.fullmatch(value) is not None)
    )


def _describe(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"

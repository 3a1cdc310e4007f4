"""GIM's ``networkPolicy.*`` Helm values: read, merged and validated as Helm would take them.

``load_values`` follows ``helm install -f a.yaml -f b.yaml --set ...`` (Helm v3, pkg/cli/values/options.go
``MergeValues``): files are read with Helm's YAML dialect (``conformance.gim.helm_yaml``), merged in order,
then the ``--set`` expressions are applied. A null removes a key, as it does when Helm coalesces user
values with the chart's defaults, so the key takes its default. Validation happens before anything else
and names the file and key path.
"""

from __future__ import annotations

import copy
import difflib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.errors import UserError
from conformance.gim.helm_set import apply_set
from conformance.gim.helm_yaml import read_yaml_document
from conformance.netpol.k8s_schema import validate_network_policy
from conformance.netpol.model import K8sObject

ROOT_KEY = "networkPolicy"

# The names of the policies the chart renders itself (render.py): extraPolicies may not take them.
DEFAULT_DENY = "gim-netpol-default-deny"
SAME_NAMESPACE = "gim-netpol-allow-same-namespace"
ALLOWED_NAMESPACES = "gim-netpol-allow-namespaces"
DRYRUN_ALLOW_ALL = "gim-netpol-dryrun-allow-all"
BUILTIN_NAMES = frozenset({DEFAULT_DENY, SAME_NAMESPACE, ALLOWED_NAMESPACES, DRYRUN_ALLOW_ALL})
MODES = ("dryrun", "enforce")
KEYS = ("enabled", "mode", "allowedNamespaces", "extraPolicies")
SET_SOURCE = "--set"
STDIN = "-"

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class NetpolValues:
    enabled: bool = False
    mode: str = "dryrun"  # "dryrun" | "enforce"
    allowed_namespaces: tuple[str, ...] = ()
    extra_policies: tuple[K8sObject, ...] = ()
    # Where extraPolicies came from (a file, "--set", ...), for errors found at render time.
    extra_policies_source: str = field(default="values", compare=False, repr=False)

    @property
    def enforcing(self) -> bool:
        return self.enabled and self.mode == "enforce"


# -- reading and merging ------------------------------------------------------------------------------


def merge_values(base: dict, override: dict) -> dict:
    """``override`` over ``base`` as ``helm -f base -f override``: maps merge deeply, later wins, lists
    are replaced, a null removes the key. Neither argument is modified."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            current = out.get(key)
            out[key] = merge_values(current if isinstance(current, dict) else {}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_values_file(path: str | Path) -> tuple[dict, str]:
    source = str(path)
    if source == STDIN:
        source, text = "<stdin>", sys.stdin.read()
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UserError("cannot read values file: not UTF-8 text", source=source) from None
        except OSError as exc:
            raise UserError(f"cannot read values file: {exc.strerror or exc}", source=source) from None
    document = read_yaml_document(text, source)
    if document is None:
        return {}, source
    if not isinstance(document, dict):
        raise UserError(
            f"a values file must be a YAML mapping (key: value), not {_describe(document)}", source=source
        )
    return document, source


def _touched(doc: Mapping) -> list[str]:
    """The ``networkPolicy`` keys a document sets ("" for the block itself when it is not a mapping)."""
    if ROOT_KEY not in doc:
        return []
    block = doc[ROOT_KEY]
    return [str(k) for k in block] if isinstance(block, dict) else [""]


def load_values(files: Sequence[str | Path], sets: Sequence[str] = ()) -> NetpolValues:
    """Values files merged in order, then ``--set`` expressions, then validated."""
    merged: dict = {}
    origins: dict[str, str] = {}  # networkPolicy key -> the source that set it last
    for path in files:
        document, source = _read_values_file(path)
        merged = merge_values(merged, document)
        for key in _touched(document):
            origins[key] = source
    for expression in sets:
        apply_set(merged, expression)
        alone: dict = {}
        apply_set(alone, expression)
        for key in _touched(alone):
            previous = origins.get(key) or origins.get("")
            if key and previous and _child(alone, key) != _child(merged, key):
                # An expression such as a[1].b=x edits what a file gave: both are to blame.
                origins[key] = f"{previous}, {SET_SOURCE}"
            else:
                origins[key] = SET_SOURCE
    fallback = origins.get("") or (str(files[-1]) if files else SET_SOURCE)
    return _parse(merged, lambda key: origins.get(key) or origins.get("") or fallback)


def _child(doc: Mapping, key: str) -> Any:
    block = doc.get(ROOT_KEY)
    return block.get(key) if isinstance(block, dict) else None


# -- validation -----------------------------------------------------------------------------------------


def parse_values(doc: Mapping, source: str) -> NetpolValues:
    """Validate a merged values document (a full GIM values file: other top-level keys are ignored)."""
    return _parse(doc, lambda _key: source)


def _parse(doc: Mapping, source_of: Callable[[str], str]) -> NetpolValues:
    block = doc.get(ROOT_KEY)
    if block is None:
        return NetpolValues()
    if not isinstance(block, Mapping):
        raise UserError(f"must be a mapping, not {_describe(block)}", source=source_of(""), key=ROOT_KEY)
    for key in block:
        if key not in KEYS:
            raise UserError(
                _unknown_key_message(str(key)), source=source_of(str(key)), key=f"{ROOT_KEY}.{key}"
            )
    extra_source = source_of("extraPolicies")
    return NetpolValues(
        enabled=_parse_enabled(block.get("enabled"), source_of("enabled")),
        mode=_parse_mode(block.get("mode"), source_of("mode")),
        allowed_namespaces=_parse_namespaces(block.get("allowedNamespaces"), source_of("allowedNamespaces")),
        extra_policies=_parse_extra_policies(block.get("extraPolicies"), extra_source),
        extra_policies_source=extra_source,
    )


def _unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.6) or [
        k for k in KEYS if k.lower() == key.lower()
    ]
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(KEYS)}"
    return f"unknown key{hint}"


def _parse_enabled(value: Any, source: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise UserError(
            f"must be a boolean (true or false), not {_describe(value)}",
            source=source,
            key=f"{ROOT_KEY}.enabled",
        )
    return value


def _parse_mode(value: Any, source: str) -> str:
    key = f"{ROOT_KEY}.mode"
    if value is None:
        return "dryrun"
    if not isinstance(value, str):
        raise UserError(f"must be one of dryrun, enforce; not {_describe(value)}", source=source, key=key)
    if value not in MODES:
        close = difflib.get_close_matches(value.lower(), MODES, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"must be one of dryrun, enforce; not {value!r}{hint}", source=source, key=key)
    return value


def _parse_namespaces(value: Any, source: str) -> tuple[str, ...]:
    key = f"{ROOT_KEY}.allowedNamespaces"
    if value is None:
        return ()
    if not isinstance(value, list):
        hint = " (with --set, write a list as {a,b})" if isinstance(value, str) else ""
        raise UserError(
            f"must be a list of namespace names, not {_describe(value)}{hint}", source=source, key=key
        )
    seen: dict[str, int] = {}
    for index, name in enumerate(value):
        item_key = f"{key}[{index}]"
        if not isinstance(name, str):
            raise UserError(f"must be a namespace name, not {_describe(name)}", source=source, key=item_key)
        if not is_dns1123_label(name):
            raise UserError(
                f"{name!r} is not a valid namespace name (a DNS-1123 label: at most 63 lowercase letters,"
                " digits and '-', starting and ending with a letter or digit)",
                source=source,
                key=item_key,
            )
        if name in seen:
            raise UserError(f"{name!r} is already listed at [{seen[name]}]", source=source, key=item_key)
        seen[name] = index
    return tuple(value)


def _parse_extra_policies(value: Any, source: str) -> tuple[K8sObject, ...]:
    key = f"{ROOT_KEY}.extraPolicies"
    if value is None:
        return ()
    if not isinstance(value, list):
        raise UserError(
            f"must be a list of NetworkPolicy objects, not {_describe(value)}", source=source, key=key
        )
    seen: dict[str, int] = {}
    for index, policy in enumerate(value):
        item_key = f"{key}[{index}]"
        validate_network_policy(policy, source, item_key)
        name = policy["metadata"]["name"]
        if name in seen:
            raise UserError(
                f"name {name!r} is already used by [{seen[name]}]",
                source=source,
                key=f"{item_key}.metadata.name",
            )
        if name in BUILTIN_NAMES:
            raise UserError(
                f"name {name!r} is the name of a built-in policy; choose another",
                source=source,
                key=f"{item_key}.metadata.name",
            )
        seen[name] = index
    return tuple(copy.deepcopy(p) for p in value)


def is_dns1123_label(name: str) -> bool:
    return len(name) <= 63 and _DNS1123_LABEL.fullmatch(name) is not None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__

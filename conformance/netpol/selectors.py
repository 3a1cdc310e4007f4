"""Kubernetes LabelSelector semantics (meta/v1 LabelSelector, as NetworkPolicy uses it).

A selector is ``{"matchLabels": {...}, "matchExpressions": [{"key", "operator", "values"}]}``.
Every matchLabels entry and every expression must hold (AND). ``NotIn`` and ``DoesNotExist`` hold
when the key is absent. An empty selector matches everything; so does ``None`` here (callers that
give an absent selector another meaning, like NetworkPolicy peers, handle that themselves).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from conformance.errors import UserError

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_SELECTOR_FIELDS = ("matchLabels", "matchExpressions")
_EXPRESSION_FIELDS = ("key", "operator", "values")

LabelMatcher = Callable[[Mapping[str, str]], bool]


def validate_selector(selector: Any, where: str) -> None:
    """Raise UserError (key: the offending path under ``where``) unless ``selector`` is a LabelSelector."""
    if selector is None:
        return
    if not isinstance(selector, Mapping):
        raise UserError(f"a label selector must be a mapping, not {type(selector).__name__}", key=where)
    for field in selector:
        if field not in _SELECTOR_FIELDS:
            raise UserError(
                f"unknown field {field!r} in a label selector (expected matchLabels, matchExpressions)",
                key=f"{where}.{field}",
            )
    labels = selector.get("matchLabels")
    if labels is not None:
        if not isinstance(labels, Mapping):
            raise UserError("matchLabels must be a mapping of label to value", key=f"{where}.matchLabels")
        for k, v in labels.items():
            if not isinstance(k, str) or not k:
                raise UserError(f"label key {k!r} must be a non-empty string", key=f"{where}.matchLabels")
            if not isinstance(v, str):
                raise UserError(
                    f"label value {v!r} must be a string (quote it in YAML)", key=f"{where}.matchLabels.{k}"
                )
    expressions = selector.get("matchExpressions")
    if expressions is not None:
        if not isinstance(expressions, list):
            raise UserError("matchExpressions must be a list", key=f"{where}.matchExpressions")
        for i, expr in enumerate(expressions):
            _validate_expression(expr, f"{where}.matchExpressions[{i}]")


def _validate_expression(expr: Any, where: str) -> None:
    if not isinstance(expr, Mapping):
        raise UserError("a match expression must be a mapping with key, operator, values", key=where)
    for field in expr:
        if field not in _EXPRESSION_FIELDS:
            raise UserError(f"unknown field {field!r} in a match expression", key=f"{where}.{field}")
    key = expr.get("key")
    if not isinstance(key, str) or not key:
        raise UserError("key must be a non-empty string", key=f"{where}.key")
    op = expr.get("operator")
    if op not in OPERATORS:
        raise UserError(
            f"unknown operator {op!r} (expected one of {', '.join(OPERATORS)})", key=f"{where}.operator"
        )
    values = expr.get("values")
    if op in ("In", "NotIn"):
        if not isinstance(values, list) or not values:
            raise UserError(f"operator {op} needs a non-empty list of values", key=f"{where}.values")
        for j, v in enumerate(values):
            if not isinstance(v, str):
                raise UserError(f"value {v!r} must be a string", key=f"{where}.values[{j}]")
    elif values:
        raise UserError(f"operator {op} takes no values", key=f"{where}.values")


def compile_selector(selector: Mapping[str, Any] | None) -> LabelMatcher:
    """A function telling whether a label set matches ``selector`` (assumed valid)."""
    if not selector:
        return _match_all
    tests: list[Callable[[Mapping[str, str]], bool]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        tests.append(lambda labels, k=k, v=v: labels.get(k) == v)
    for expr in selector.get("matchExpressions") or ():
        key, op = expr["key"], expr["operator"]
        if op == "In":
            values = frozenset(expr["values"])
            tests.append(lambda labels, key=key, values=values: labels.get(key) in values)
        elif op == "NotIn":
            values = frozenset(expr["values"])
            tests.append(lambda labels, key=key, values=values: labels.get(key) not in values)
        elif op == "Exists":
            tests.append(lambda labels, key=key: key in labels)
        else:  # DoesNotExist
            tests.append(lambda labels, key=key: key not in labels)
    if not tests:
        return _match_all
    if len(tests) == 1:
        return tests[0]
    return lambda labels: all(t(labels) for t in tests)


def selector_keys(selector: Mapping[str, Any] | None) -> set[str]:
    """The label keys ``selector`` looks at: labels with other keys never change its answer."""
    if not selector:
        return set()
    keys = set((selector.get("matchLabels") or {}).keys())
    keys.update(e["key"] for e in selector.get("matchExpressions") or ())
    return keys


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` match the LabelSelector ``selector``; ``None`` and ``{}`` match everything.

    Raises UserError if the selector is malformed (an unknown operator, In without values...).
    """
    validate_selector(selector, "selector")
    return compile_selector(selector)(labels)


def _match_all(labels: Mapping[str, str]) -> bool:
    return True

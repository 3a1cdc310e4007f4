"""LabelSelector semantics (meta/v1 LabelSelector) and the errors on malformed selectors."""

from __future__ import annotations

import pytest

from conformance.errors import UserError
from conformance.netpol.selectors import compile_selector, matches, selector_keys, validate_selector

LABELS = {"app": "api", "tier": "backend"}


@pytest.mark.parametrize("selector", [None, {}, {"matchLabels": {}}, {"matchExpressions": []}])
def test_empty_selectors_match_everything(selector: dict | None) -> None:
    assert matches(selector, LABELS)
    assert matches(selector, {})


def test_match_labels_need_every_label_with_its_value() -> None:
    assert matches({"matchLabels": {"app": "api"}}, LABELS)
    assert matches({"matchLabels": {"app": "api", "tier": "backend"}}, LABELS)
    assert not matches({"matchLabels": {"app": "api", "tier": "frontend"}}, LABELS)
    assert not matches({"matchLabels": {"zone": "a"}}, LABELS)
    assert not matches({"matchLabels": {"app": ""}}, {})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"key": "app", "operator": "In", "values": ["api", "web"]}, True),
        ({"key": "app", "operator": "In", "values": ["web"]}, False),
        ({"key": "zone", "operator": "In", "values": ["a"]}, False),
        ({"key": "app", "operator": "NotIn", "values": ["web"]}, True),
        ({"key": "app", "operator": "NotIn", "values": ["api"]}, False),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, True),  # absent key: NotIn holds
        ({"key": "app", "operator": "Exists"}, True),
        ({"key": "zone", "operator": "Exists"}, False),
        ({"key": "zone", "operator": "DoesNotExist"}, True),
        ({"key": "app", "operator": "DoesNotExist"}, False),
    ],
)
def test_match_expressions_operators(expression: dict, expected: bool) -> None:
    assert matches({"matchExpressions": [expression]}, LABELS) is expected


def test_match_labels_and_expressions_are_anded() -> None:
    selector = {
        "matchLabels": {"app": "api"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend"]}],
    }
    assert not matches(selector, LABELS)
    selector["matchExpressions"][0]["values"] = ["backend"]
    assert matches(selector, LABELS)
    selector["matchExpressions"].append({"key": "zone", "operator": "Exists"})
    assert not matches(selector, LABELS)


def test_compiled_selector_agrees_with_matches() -> None:
    selector = {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["backend"]}]}
    matcher = compile_selector(selector)
    for labels in (LABELS, {}, {"tier": "frontend"}):
        assert matcher(labels) == matches(selector, labels)


def test_selector_keys_lists_the_keys_it_reads() -> None:
    selector = {"matchLabels": {"app": "api"}, "matchExpressions": [{"key": "zone", "operator": "Exists"}]}
    assert selector_keys(selector) == {"app", "zone"}
    assert selector_keys(None) == set()


@pytest.mark.parametrize(
    ("selector", "key"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
            "sel.matchExpressions[0].operator",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            "sel.matchExpressions[0].operator",
        ),
        ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "sel.matchExpressions[0].values"),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "sel.matchExpressions[0].values",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            "sel.matchExpressions[0].values",
        ),
        ({"matchExpressions": [{"operator": "Exists"}]}, "sel.matchExpressions[0].key"),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]},
            "sel.matchExpressions[0].values[0]",
        ),
        ({"matchExpressions": {"key": "a"}}, "sel.matchExpressions"),
        ({"matchLabels": {"app": True}}, "sel.matchLabels.app"),
        ({"matchLabels": ["app"]}, "sel.matchLabels"),
        ({"matchLabel": {"app": "x"}}, "sel.matchLabel"),
        ("app=x", "sel"),
    ],
)
def test_malformed_selectors_are_user_errors_naming_the_key(selector: object, key: str) -> None:
    with pytest.raises(UserError) as err:
        validate_selector(selector, "sel")
    assert err.value.key == key


def test_matches_refuses_an_unknown_operator() -> None:
    with pytest.raises(UserError, match="unknown operator"):
        matches({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}, LABELS)

"""``--set`` expressions parse as Helm's parser does.

The vectors come from Helm v3's own tests (helm/helm pkg/strvals/parser_test.go, TestParseSet and
TestParseInto), so a divergence from Helm fails here.
"""

from __future__ import annotations

import pytest

from conformance.errors import UserError
from conformance.gim.helm_set import MAX_INDEX, apply_set


def parse(expression: str, doc: dict | None = None) -> dict:
    doc = {} if doc is None else doc
    apply_set(doc, expression)
    return doc


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("name1=null,f=false,t=true", {"name1": None, "f": False, "t": True}),
        ("name1=value1", {"name1": "value1"}),
        ("name1=value1,name2=value2", {"name1": "value1", "name2": "value2"}),
        ("name1=value1,name2=value2,", {"name1": "value1", "name2": "value2"}),
        ("name1=,name2=value2", {"name1": "", "name2": "value2"}),
        ("leading_zeros=00009", {"leading_zeros": "00009"}),
        ("zero_int=0", {"zero_int": 0}),
        ("long_int=1234567890", {"long_int": 1234567890}),
        ("boolean=true", {"boolean": True}),
        ("is_null=null", {"is_null": None}),
        (r"name1=one\,two,name2=three\,four", {"name1": "one,two", "name2": "three,four"}),
        (r"name1=one\=two,name2=three\=four", {"name1": "one=two", "name2": "three=four"}),
        ("name1=one two three,name2=three two one", {"name1": "one two three", "name2": "three two one"}),
        ("outer.inner=value", {"outer": {"inner": "value"}}),
        ("outer.middle.inner=value", {"outer": {"middle": {"inner": "value"}}}),
        ("outer.inner1=value,outer.inner2=value2", {"outer": {"inner1": "value", "inner2": "value2"}}),
        (
            "outer.inner1=value,outer.middle.inner=value",
            {"outer": {"inner1": "value", "middle": {"inner": "value"}}},
        ),
        ("name1.name2=", {"name1": {"name2": ""}}),
        ("name1={value1,value2}", {"name1": ["value1", "value2"]}),
        (
            "name1={value1,value2},name2={value1,value2}",
            {"name1": ["value1", "value2"], "name2": ["value1", "value2"]},
        ),
        ("name1={1021,902}", {"name1": [1021, 902]}),
        ("name1.name2={value1,value2}", {"name1": {"name2": ["value1", "value2"]}}),
        ("list[0]=foo", {"list": ["foo"]}),
        ("list[0].foo=bar", {"list": [{"foo": "bar"}]}),
        ("list[0].foo=bar,list[0].hello=world", {"list": [{"foo": "bar", "hello": "world"}]}),
        ("list[0]=foo,list[1]=bar", {"list": ["foo", "bar"]}),
        ("list[0]=foo,list[1]=bar,", {"list": ["foo", "bar"]}),
        ("list[0]=foo,list[3]=bar", {"list": ["foo", None, None, "bar"]}),
        ("noval[0]", {"noval": []}),
        ("noval[0]=", {"noval": [""]}),
        ("nested[0][0]=1", {"nested": [[1]]}),
        ("nested[1][1]=1", {"nested": [None, [None, 1]]}),
        (
            "name1.name2[0].foo=bar,name1.name2[1].foo=bar",
            {"name1": {"name2": [{"foo": "bar"}, {"foo": "bar"}]}},
        ),
        (
            "name1.name2[1].foo=bar,name1.name2[0].foo=bar",
            {"name1": {"name2": [{"foo": "bar"}, {"foo": "bar"}]}},
        ),
        ("name1.name2[1].foo=bar", {"name1": {"name2": [None, {"foo": "bar"}]}}),
    ],
)
def test_helm_parse_set_vectors(expression: str, expected: dict) -> None:
    assert parse(expression) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "name1=value1,,,,name2=value2,",
        "name1,name2=",
        "name1,name2=value2",
        "name1,name2=value2\\",
        "name1,name2",
        "name1.name2",
        "name1.name2,name1.name3",
        "name1.=name2",
        "name1.,name2",
        "name1={1021,902",
        "list[0].foo=bar,list[-30].hello=world",
        "list[0]=foo,list[-20]=bar",
        "illegal[0]name.foo=bar",
        "]={}].",
        f"list[{MAX_INDEX + 1}]=x",
        "list[x]=1",
        "list[0=1",
    ],
)
def test_helm_rejects_bad_syntax_with_a_user_error_naming_the_expression(expression: str) -> None:
    with pytest.raises(UserError) as caught:
        parse(expression)
    assert caught.value.source == "--set"
    assert caught.value.key == expression
    assert "failed parsing --set data" in caught.value.message


def test_parse_into_overwrites_and_adds_to_existing_values() -> None:
    doc = {"outer": {"inner1": "overwrite", "inner2": "value2"}}
    parse("outer.inner1=value1,outer.inner3=value3,outer.inner4=4", doc)
    assert doc == {"outer": {"inner1": "value1", "inner2": "value2", "inner3": "value3", "inner4": 4}}


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (
            "listOuter[0][0].type=listValue",
            "listOuter[0][0].status=alive",
            {"listOuter": [[{"type": "listValue", "status": "alive"}]]},
        ),
        (
            "listOuter[0][0].type=listValue",
            "listOuter[1][0].status=alive",
            {"listOuter": [[{"type": "listValue"}], [{"status": "alive"}]]},
        ),
    ],
)
def test_parse_into_twice_builds_nested_lists(first: str, second: str, expected: dict) -> None:
    doc: dict = {}
    parse(first, doc)
    parse(second, doc)
    assert doc == expected


def test_parse_into_existing_nested_lists_keeps_what_was_there() -> None:
    doc = {"listOuter": [[[{"exited": "old"}]]]}
    parse("listOuter[0][1][0].type=listValue", doc)
    parse("listOuter[0][0][1].status=alive", doc)
    assert doc == {"listOuter": [[[{"exited": "old"}, {"status": "alive"}], [{"type": "listValue"}]]]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("TRUE", True),
        ("False", False),
        ("NULL", None),
        ("-5", -5),
        ("+7", 7),
        ("0", 0),
        ("007", "007"),
        ("1.5", "1.5"),  # Helm types integers only
        ("yes", "yes"),  # unlike YAML, --set does not know yes/no
        ("1_000", "1_000"),
        ("9223372036854775808", "9223372036854775808"),  # beyond int64 stays a string
        ("", ""),
    ],
)
def test_values_are_typed_as_helm_types_them(value: str, expected: object) -> None:
    result = parse(f"k={value}")["k"]
    assert result == expected
    assert type(result) is type(expected)


def test_a_set_list_is_a_list_of_typed_items_and_empty_braces_give_one_empty_string() -> None:
    assert parse("a={ingress-nginx,monitoring}") == {"a": ["ingress-nginx", "monitoring"]}
    assert parse("a={1,true,x}") == {"a": [1, True, "x"]}
    assert parse("a={}") == {"a": [""]}


def test_escaped_dot_is_part_of_the_key() -> None:
    assert parse(r"labels.app\.kubernetes\.io/name=gim") == {"labels": {"app.kubernetes.io/name": "gim"}}


def test_setting_below_a_scalar_is_an_error_and_leaves_the_document_unchanged() -> None:
    doc = {"networkPolicy": {"mode": "enforce"}, "other": 1}
    with pytest.raises(UserError, match="holds a str, not a map"):
        parse("networkPolicy.mode.x=1", doc)
    assert doc == {"networkPolicy": {"mode": "enforce"}, "other": 1}


def test_indexing_a_map_is_an_error() -> None:
    with pytest.raises(UserError, match="not a list"):
        parse("a[0]=x", {"a": {"b": 1}})


def test_index_into_existing_list_replaces_a_scalar_with_a_map() -> None:
    # Helm: "We have indices out of order. Initialize empty value."
    assert parse("a[0].b=1", {"a": ["x"]}) == {"a": [{"b": 1}]}


def test_nesting_deeper_than_helm_allows_is_an_error() -> None:
    too_deep = ".".join(f"k{i}" for i in range(32)) + "=1"
    with pytest.raises(UserError, match="nested level"):
        parse(too_deep)
    ok = ".".join(f"k{i}" for i in range(30)) + "=1"
    assert parse(ok)

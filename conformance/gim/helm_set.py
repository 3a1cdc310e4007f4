"""Helm's ``--set`` syntax, applied to a values document the way ``helm install --set`` does.

A port of Helm v3's ``pkg/strvals/parser.go`` (``ParseInto`` with typed values), including its quirks:
``a={}`` gives ``[""]``, ``a[2]=x`` pads the list with nulls, only ``true``/``false``/``null`` (any case)
and base-10 integers without a leading zero are typed, ``\\`` escapes the next character anywhere,
and setting ``a.b`` when ``a`` holds a scalar is an error.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from conformance.errors import UserError

# Limits from pkg/strvals/parser.go.
MAX_INDEX = 65536
MAX_NESTED_NAME_LEVEL = 30

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_DECIMAL = re.compile(r"[+-]?[0-9]+", re.ASCII)  # what Go's strconv.ParseInt(s, 10, 64) accepts


class _SetError(Exception):
    pass


class _Eof:
    """Go's io.EOF: the end of the expression, which is not an error for the caller."""


class _NotList:
    """Go's ErrNotList: the value after ``=`` does not start with ``{``."""


EOF = _Eof()
NOT_LIST = _NotList()


def apply_set(doc: dict, expression: str) -> None:
    """Apply one ``--set`` expression to ``doc`` in place; ``doc`` is unchanged if it is invalid."""
    work = copy.deepcopy(doc)
    try:
        _Parser(expression).parse(work)
    except _SetError as exc:
        raise UserError(f"failed parsing --set data: {exc}", source="--set", key=expression) from None
    doc.clear()
    doc.update(work)


def typed_value(text: str) -> Any:
    """A ``--set`` value typed as Helm's ``typedVal`` types it."""
    folded = text.casefold()  # Go's strings.EqualFold
    if folded == "true":
        return True
    if folded == "false":
        return False
    if folded == "null":
        return None
    if text == "0":
        return 0
    if text and text[0] != "0" and _DECIMAL.fullmatch(text):
        number = int(text)
        if _INT64_MIN <= number <= _INT64_MAX:
            return number
    return text


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return type(value).__name__


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -- scanner ---------------------------------------------------------------------------------------

    def _read(self) -> str | None:
        if self.pos >= len(self.text):
            return None
        char = self.text[self.pos]
        self.pos += 1
        return char

    def _unread(self) -> None:
        self.pos -= 1

    def _until(self, stop: str) -> tuple[str, str | None]:
        """Characters up to one in ``stop`` (consumed, returned second; None at the end); ``\\`` escapes."""
        out: list[str] = []
        while True:
            char = self._read()
            if char is None:
                return "".join(out), None
            if char in stop:
                return "".join(out), char
            if char == "\\":
                escaped = self._read()
                if escaped is None:
                    return "".join(out), None
                out.append(escaped)
            else:
                out.append(char)

    # -- grammar ---------------------------------------------------------------------------------------

    def parse(self, data: dict) -> None:
        while self._key(data, 0) is not EOF:
            pass

    def _key(self, data: dict, level: int) -> _Eof | None:
        key, last = self._until("=[,.")
        if last is None:
            if not key:
                return EOF
            raise _SetError(f"key {key!r} has no value")
        if last == "[":
            index = self._index()
            items: list = []
            if key in data:
                items = _expect_list(data[key], key)
            items, end = self._list_item(items, index, level)
            _set(data, key, items)
            return end
        if last == "=":
            values, outcome = self._value_list()
            if outcome is None:
                _set(data, key, values)
                return None
            if outcome is EOF:
                _set(data, key, "")
                return EOF
            text, _ = self._until(",")
            _set(data, key, typed_value(text))
            return None
        if last == ",":
            raise _SetError(f"key {key!r} has no value (cannot end with ,)")
        # last == "."
        level += 1
        if level > MAX_NESTED_NAME_LEVEL:
            raise _SetError(
                f"value name nested level is greater than maximum supported nested level of "
                f"{MAX_NESTED_NAME_LEVEL}"
            )
        inner: dict = {}
        if key in data:
            inner = _expect_map(data[key], key)
        end = self._key(inner, level)
        if end is None and not inner:
            raise _SetError(f"key map {key!r} has no value")
        if inner:
            _set(data, key, inner)
        return end

    def _index(self) -> int:
        text, last = self._until("]")
        if last is None:
            raise _SetError("error parsing index: EOF")
        if not _DECIMAL.fullmatch(text):
            raise _SetError(f"error parsing index: strconv.Atoi: parsing {text!r}: invalid syntax")
        return int(text)

    def _list_item(self, items: list, index: int, level: int) -> tuple[list, _Eof | None]:
        if index < 0:
            raise _SetError(f"negative {index} index not allowed")
        rest, last = self._until("[.=")
        if rest:
            raise _SetError(f"unexpected data at end of array index: {rest!r}")
        if last is None:
            return items, EOF
        if last == "=":
            values, outcome = self._value_list()
            if outcome is None:
                return _set_index(items, index, values), None
            if outcome is EOF:
                return _set_index(items, index, ""), None
            text, _ = self._until(",")
            return _set_index(items, index, typed_value(text)), None
        if last == "[":
            next_index = self._index()
            current: list = []
            if len(items) > index and items[index] is not None:
                current = _expect_list(items[index], f"[{index}]")
            nested, end = self._list_item(current, next_index, level)
            if end is not None:
                return items, end
            return _set_index(items, index, nested), None
        # last == ".": a map inside the list; a non-map already there is replaced, as Helm does.
        inner: dict = {}
        if len(items) > index:
            if not isinstance(items[index], dict):
                items[index] = {}
            inner = items[index]
        end = self._key(inner, level)
        if end is not None:
            return items, end
        return _set_index(items, index, inner), None

    def _value_list(self) -> tuple[list, _Eof | _NotList | None]:
        char = self._read()
        if char is None:
            return [], EOF
        if char != "{":
            self._unread()
            return [], NOT_LIST
        values: list = []
        while True:
            text, last = self._until(",}")
            if last is None:
                raise _SetError("list must terminate with '}'")
            values.append(typed_value(text))
            if last == "}":
                following = self._read()
                if following is not None and following != ",":
                    self._unread()
                return values, None


def _set(data: dict, key: str, value: Any) -> None:
    if key:  # Helm ignores an empty key
        data[key] = value


def _set_index(items: list, index: int, value: Any) -> list:
    if index < 0:
        raise _SetError(f"negative {index} index not allowed")
    if index > MAX_INDEX:
        raise _SetError(f"index of {index} is greater than maximum supported index of {MAX_INDEX}")
    if len(items) <= index:
        items.extend([None] * (index + 1 - len(items)))
    items[index] = value
    return items


def _expect_list(value: Any, key: str) -> list:
    if not isinstance(value, list):
        raise _SetError(f"unable to parse key: {key!r} holds a {_go_type(value)}, not a list")
    return value


def _expect_map(value: Any, key: str) -> dict:
    if not isinstance(value, dict):
        raise _SetError(f"unable to parse key: {key!r} holds a {_go_type(value)}, not a map")
    return value

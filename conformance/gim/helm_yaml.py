"""Values YAML read as Helm reads it: the first document, go-yaml v2's resolver, then JSON-compatible.

Helm reads values with sigs.k8s.io/yaml, i.e. go-yaml v2's YAML 1.1 resolver (goyaml.v2/resolve.go),
then converts to JSON. Differences from PyYAML's resolver that we follow: y/Y/n/N are booleans;
timestamps stay strings; no sexagesimal numbers; `=` is a string; 1e3 and 08 are floats; 0o17 is octal;
non-string mapping keys become strings.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from conformance.errors import UserError
from conformance.netpol import yaml_guard

_YamlBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_BOOL_TRUE = ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")
_BOOL_FALSE = ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
_INT = re.compile(
    r"""^[-+]?(?:0[xX]_*[0-9a-fA-F][0-9a-fA-F_]*
               |0[bB]_*[01][01_]*
               |0[oO]_*[0-7][0-7_]*
               |0[0-7_]*
               |[1-9][0-9_]*)$""",
    re.X,
)
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?
            |\.[0-9]+(?:[eE][-+]?[0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
    re.X,
)


class HelmYamlLoader(_YamlBase):  # type: ignore[misc, valid-type]
    """PyYAML's safe loader (C-accelerated where available) with go-yaml v2's implicit types."""


HelmYamlLoader.yaml_implicit_resolvers = {}
HelmYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile("^(?:" + "|".join(_BOOL_TRUE + _BOOL_FALSE) + ")$"),
    list("yYnNtTfFoO"),
)
HelmYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
HelmYamlLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
HelmYamlLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
HelmYamlLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


def _construct_bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
    return loader.construct_scalar(node) in _BOOL_TRUE


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    prefix = digits[:2].lower()
    if prefix in ("0x", "0b", "0o"):
        return sign * int(digits[2:], {"0x": 16, "0b": 2, "0o": 8}[prefix])
    if len(digits) > 1 and digits.startswith("0"):
        return sign * int(digits, 8)
    return sign * int(digits)


HelmYamlLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
HelmYamlLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def read_yaml_document(text: str, source: str) -> Any:
    """The first document of ``text`` as Helm reads a values file (later documents are ignored)."""
    try:
        documents = yaml_guard.load_all(text, HelmYamlLoader, source)
        document = next(documents, None)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise UserError(f"bad YAML{where}: {problem}", source=source) from None
    except yaml.YAMLError as exc:
        raise UserError(f"bad YAML: {exc}", source=source) from None
    return _jsonable(document, source, "")


def _jsonable(value: Any, source: str, path: str) -> Any:
    """The value as it comes out of sigs.k8s.io/yaml's YAML-to-JSON conversion."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = _key_string(key, source, path)
            out[name] = _jsonable(item, source, _join(path, name))
        return out
    if isinstance(value, list):
        return [_jsonable(v, source, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{value} cannot be converted to JSON (Helm rejects it)", source=source, key=path)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is not None and not isinstance(value, str | int | float | bool):
        return str(value)  # explicit !!timestamp and the like
    return value


def _key_string(key: Any, source: str, path: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int | float):
        return str(key)
    raise UserError(f"unsupported mapping key {key!r}", source=source, key=path or None)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key

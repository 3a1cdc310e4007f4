"""YAML documents read with go-yaml's guard against alias bombs, which Helm's reader has and PyYAML has not.

A 500-byte document of nested aliases (``a: &a [x, x, ...]``, ``b: &b [*a, *a, ...]``, eight levels)
stands for billions of values. PyYAML builds it as shared references, cheaply, but everything that
walks the result (values conversion, simulation, output) expands it: minutes and gigabytes. Helm reads
YAML with sigs.k8s.io/yaml, i.e. go-yaml v2, whose decoder counts every node it decodes and the ones
it decodes through an alias, and fails with "document contains excessive aliasing" when aliases do
too much of the work (gopkg.in/yaml.v2 v2.4.0 decode.go, ``decoder.unmarshal`` and
``allowedAliasRatio``: the fix of CVE-2019-11253; go-yaml v3 decode.go keeps the same rule). We apply
that rule to the composed node graph, before anything is constructed, so a refusal costs at most a
few hundred thousand steps whatever the document expands to. A legitimate file with a few aliases
(merge keys, a shared list of labels) is far below the limit and loads as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from conformance.errors import UserError

# go-yaml's thresholds: 99% of the decodes may come from aliases up to 400,000 decodes, scaling down
# to 10% at 4,000,000; never before 1,000 decodes and 100 aliased ones.
RATIO_RANGE_LOW = 400_000
RATIO_RANGE_HIGH = 4_000_000
MIN_DECODES = 1000
MIN_ALIASED = 100

# Where an alias can start: the start of a line, after a space, or after an indicator ('[', '{', ',', and
# ':' in JSON-like flow mappings: {"k":*a}; '?' and '-' for good measure). A string like "a *b" matches
# too and only costs the walk.
ALIAS = re.compile(r"(?:^|[\s\[{,:?-])\*[^\s\]},]", re.M)

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

EXCESSIVE_ALIASING = "document contains excessive aliasing (Helm's YAML reader refuses it too)"


def allowed_alias_ratio(decodes: int) -> float:
    if decodes <= RATIO_RANGE_LOW:
        return 0.99
    if decodes >= RATIO_RANGE_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decodes - RATIO_RANGE_LOW) / (RATIO_RANGE_HIGH - RATIO_RANGE_LOW)


def load_all(text: str, loader_class: type, source: str) -> Iterator[Any]:
    """``yaml.load_all(text, Loader=loader_class)``, refusing a document that go-yaml would refuse.

    Raises UserError naming ``source`` for excessive aliasing or an anchor that contains itself;
    YAML syntax errors propagate as ``yaml.YAMLError`` for the caller to word.
    """
    may_alias = ALIAS.search(text) is not None  # kubectl and Helm never write one: no walk for them
    loader = loader_class(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if may_alias:
                check_aliasing(node, source)
            yield loader.construct_document(node)
    finally:
        loader.dispose()


def load_first(text: str, source: str, loader_class: type = SAFE_LOADER) -> Any:
    """The first document of ``text`` (None if there is none), as ``load_all`` reads it."""
    return next(load_all(text, loader_class, source), None)


def check_aliasing(root: yaml.Node, source: str) -> None:
    """Counts ``root``'s decodes as go-yaml does (aliases expanded) and refuses it when aliases dominate.

    PyYAML's composer returns the anchored node itself for an alias, so an alias is an edge to a node
    already complete in document order (or to one being composed: an anchor that contains itself).
    Each node's expanded size is kept, so an alias costs one step, not the size of what it expands to.
    Checking after each alias instead of after each node it expands gives the same verdict: while an
    alias expands, the share of aliased decodes only grows and the allowed ratio only shrinks.
    """
    size: dict[int, int] = {}  # decodes of a complete node with its aliases expanded
    partial: dict[int, int] = {0: 0}  # the same, summed so far, for nodes being walked (0: the document)
    decodes = 1  # the document node
    aliased = 0
    # (node, parent id, leaving)
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, parent, leaving = stack.pop()
        ident = id(node)
        if leaving:
            size[ident] = partial.pop(ident)
            partial[parent] += size[ident]
            continue
        if ident in partial:
            raise UserError("an anchor's value contains an alias to itself", source=source)
        if ident in size:  # an alias: its own node, then everything it expands to, aliased
            decodes += 1 + size[ident]
            aliased += size[ident]
            partial[parent] += 1 + size[ident]
        else:
            decodes += 1
        if (
            aliased > MIN_ALIASED
            and decodes > MIN_DECODES
            and aliased / decodes > allowed_alias_ratio(decodes)
        ):
            raise UserError(EXCESSIVE_ALIASING, source=source)
        if ident in size:
            continue
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        else:
            size[ident] = 1
            partial[parent] += 1
            continue
        partial[ident] = 1
        stack.append((node, parent, True))
        stack.extend((child, ident, False) for child in reversed(children))

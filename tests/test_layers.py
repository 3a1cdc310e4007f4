"""The package layout is the architecture: each layer imports only what its ``__init__`` allows.

Imports are read from the source (``ast``), top-level and function-local alike, so a lazy import
cannot slip past the rule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "conformance"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def layer_imports(layer: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(PACKAGE.parent)): imported_modules(path)
        for path in sorted((PACKAGE / layer).rglob("*.py"))
    }


def offending(imports: dict[str, set[str]], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{file} imports {module}"
        for file, modules in imports.items()
        for module in modules
        if any(module == f or module.startswith(f + ".") for f in forbidden)
    )


NETPOL_FORBIDDEN = (
    "conformance.gim",
    "conformance.suite",
    "conformance.backends",
    "conformance.probes",
    "conformance.verify",
    "conformance.commands",
    "pytest",
    "_pytest",
    "kubernetes",
)


# The GIM contract layer sits right above the engine: it may import the engine, nothing else of ours.
GIM_FORBIDDEN = tuple(f for f in NETPOL_FORBIDDEN if f != "conformance.gim")


def test_the_netpol_engine_knows_nothing_of_gim_pytest_or_the_cluster_client() -> None:
    assert offending(layer_imports("netpol"), NETPOL_FORBIDDEN) == []


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("probes", ("conformance.backends", "conformance.suite", "conformance.gim", "conformance.verify")),
        ("backends", ("conformance.suite", "conformance.gim", "conformance.verify", "conformance.commands")),
        ("gim", GIM_FORBIDDEN),
    ],
)
def test_lower_layers_do_not_import_upper_ones(layer: str, forbidden: tuple[str, ...]) -> None:
    assert offending(layer_imports(layer), forbidden) == []


def test_the_rule_catches_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "leaky.py"
    module.write_text("def f():\n    from conformance.gim.values import load_values\n    import pytest\n")
    found = offending({"leaky.py": imported_modules(module)}, NETPOL_FORBIDDEN)
    assert found == [
        "leaky.py imports conformance.gim.values",
        "leaky.py imports conformance.gim.values.load_values",
        "leaky.py imports pytest",
    ]

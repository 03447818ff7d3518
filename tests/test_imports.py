"""The package's layers (README, "Code map"): every import, lazy ones inside functions included, points down.

A module may import its own package and any package on a lower layer, never one on its own layer or above; so
nothing imports `cli`, and nothing the networks need reaches up into inference, training or evaluation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mixtask"
# Lowest first. Modules at the top of `mixtask/` are units of their own, like the sub-packages.
LAYERS = (
    ("errors", "choices"),
    ("fileio", "images", "tasks", "tensors"),
    ("backbones",),  # pretrained feature extractors: the networks' context branch may look through one
    ("mixing", "nets", "data"),
    ("weights",),
    ("inference",),
    ("apply", "evaluation"),
    ("training", "serve"),
    ("studies",),
    ("__init__",),  # the package's public names (mixtask/__init__.py: load_model, __version__)
    ("cli",),
    ("__main__",),
)
LAYER_OF = {unit: depth for depth, units in enumerate(LAYERS) for unit in units}


def unit_of(dotted: str) -> str:
    """mixtask.nets.film -> nets; mixtask.errors -> errors; mixtask -> __init__."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _is_module(name: str) -> bool:
    return (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name).is_dir()


def imported_units(path: Path) -> set[tuple[str, int]]:
    """(unit, line) of every mixtask module imported anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "mixtask":
            if node.module == "mixtask":  # modules, or names defined in mixtask/__init__.py
                found |= {(unit_of(f"mixtask.{alias.name}") if _is_module(alias.name) else "__init__", node.lineno)
                          for alias in node.names}  # fmt: skip
            else:
                found.add((unit_of(node.module), node.lineno))
        elif isinstance(node, ast.Import):
            found |= {(unit_of(a.name), node.lineno) for a in node.names if a.name.split(".")[0] == "mixtask"}
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_unit_has_a_layer():
    units = {unit_of(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)) for path in MODULES}
    assert units <= set(LAYER_OF), f"put these in LAYERS: {sorted(units - set(LAYER_OF))}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE.parent)))
def test_imports_one_way(path):
    dotted = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    unit = unit_of(dotted)
    upward = [
        f"line {line}: {unit} (layer {LAYER_OF[unit]}) imports {target} (layer {LAYER_OF.get(target, '?')})"
        for target, line in sorted(imported_units(path))
        if target != unit and LAYER_OF.get(target, len(LAYERS)) >= LAYER_OF[unit]
    ]
    assert not upward, "\n".join(upward)


def test_the_layer_test_sees_an_upward_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from mixtask.cli.apply import apply\n")
    assert ("cli", 2) in imported_units(module)

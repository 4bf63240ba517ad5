"""Imports run one way: every module's imports (top-level and inside functions, read with ast, and
`importlib.import_module("wdqa....")` calls) go to its own part or a lower one. Parts, lowest first:

    core        wdqa.core (wdqa/core/): errors, registry, types, suite format (and the private
                split's label file), diff math (lora), engine, model loading, cache, LLM client,
                Hub I/O, measurement; and the root package `wdqa`, which holds only the version
    generators  make suites
    benchmark   evaluate a method on a suite: method process, runner, judges, run records
    baselines   built-in methods (they implement benchmark's Method protocol)
    leaderboard read runs and bundles
    cli         the modules of wdqa/ beside core: wdqa/cli.py, which assembles every part's commands,
                and wdqa/gpu_check.py, which runs every part's benches

A lower part that needs what a higher one provides finds it through wdqa's own entry points
(pyproject.toml: the tiny base model as a model source, the built-in baselines), never an import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"wdqa": "wdqa", "benchmark": "wdqa.benchmark", "generators": "wdqa.generators",
           "baselines": "wdqa.baselines", "leaderboard": "wdqa.leaderboard"}
ORDER = ("core", "generators", "benchmark", "baselines", "leaderboard", "cli")


def part(module: str) -> str:
    name = module.split(".")
    if name[0] != "wdqa" or len(name) == 1 or name[1] == "core":
        return "core"
    if name[1] in ORDER:
        return name[1]
    return "cli"  # a module of wdqa/ beside core


def modules() -> Iterator[tuple[Path, str, bool]]:
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            yield path, ".".join((package, *(parts[:-1] if is_package else parts))), is_package


KNOWN = {name for _, name, _ in modules()}


def imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, wdqa module) for every import anywhere in the file, relative ones resolved."""
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = module.split(".") if is_package else module.split(".")[:-1]
            if node.level:
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        for name in names:
            while name and name not in KNOWN:  # `from .x import f` names module x, not x.f
                name = name.rpartition(".")[0]
            if name:
                yield node.lineno, name


def upward_in(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    for line, target in imported(tree, module, is_package):
        if ORDER.index(part(target)) > ORDER.index(part(module)):
            yield line, target


def upward_imports() -> dict[tuple[str, str], str]:
    found = {}
    for path, module, is_package in modules():
        for line, target in upward_in(ast.parse(path.read_text()), module, is_package):
            found.setdefault((module, target), f"{path.relative_to(ROOT)}:{line}")
    return found


def test_no_module_imports_a_higher_part() -> None:
    found = upward_imports()
    assert not found, "upward imports (lower part -> higher part): " + "; ".join(
        f"{where}: {a} -> {b}" for (a, b), where in sorted(found.items())
    )


def test_the_walk_sees_imports_inside_functions() -> None:
    source = "def resolve():\n    from ..generators.tiny.build import ensure_tiny_base\n"
    assert list(upward_in(ast.parse(source), "wdqa.core.models", False)) == [(2, "wdqa.generators.tiny.build")]


def test_the_walk_sees_import_module_by_name() -> None:
    source = "import importlib\ndef find():\n    return importlib.import_module('wdqa.baselines')\n"
    assert list(upward_in(ast.parse(source), "wdqa.benchmark.method", False)) == [(3, "wdqa.baselines")]


def test_every_module_is_in_a_known_part() -> None:
    assert {part(name) for _, name, _ in modules()} == set(ORDER)


def test_the_lower_parts_find_the_higher_ones_through_wdqas_entry_points() -> None:
    from wdqa.benchmark.method import builtin_baselines
    from wdqa.core.models import MODEL_SOURCES
    from wdqa.generators.tiny.build import ensure_tiny_base

    assert MODEL_SOURCES.get("wdqa/tiny") is ensure_tiny_base
    assert builtin_baselines().__name__ == "wdqa.baselines.registry"

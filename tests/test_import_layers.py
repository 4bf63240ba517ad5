"""Imports run one way: every module's imports (top-level and inside functions, read with ast) go to
its own part or a lower one. Parts, lowest first:

    core        the types everything uses: errors, registry, types, suite format (and the private
                split's label file), diff math (lora),
                engine, model loading, cache, LLM client, Hub I/O, measurement (today still files
                of benchmark/, listed in CORE)
    generators  make suites
    benchmark   evaluate a method on a suite: method process, runner, judges, run records
    baselines   built-in methods (they implement benchmark's Method protocol)
    leaderboard read runs and bundles
    cli         benchmark/cli.py, which assembles every part's commands, and benchmark/gpu_check.py,
                which runs every part's benches
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"wdqa": "wdqa", "benchmark": "wdqa.benchmark", "generators": "wdqa.generators",
           "baselines": "wdqa.baselines", "leaderboard": "wdqa.leaderboard"}
CORE = {"wdqa", "wdqa.benchmark"} | {
    f"wdqa.benchmark.{name}"
    for name in ("errors", "registry", "types", "suite", "private_labels", "lora", "engine", "triggers", "models",
                 "model_revision", "cache_dir", "llm_client", "hub", "peft_export", "measure", "progress", "model_options",
                 "model_fetch", "meter", "white_box")
}
TOP = {"wdqa.benchmark.cli", "wdqa.benchmark.gpu_check"}
ORDER = ("core", "generators", "benchmark", "baselines", "leaderboard", "cli")

# Upward imports not undone yet, each (importer, imported): a new one fails the test, and so does
# one of these once it is gone (delete it here). Each needs its lower part to find the higher one
# without importing it (a registry filled from the top, or wdqa's own entry points).
KNOWN_UPWARD = {
    # `baseline:NAME` and the default comparison baselines are looked up in baselines' registry
    ("wdqa.benchmark.method", "wdqa.baselines.registry"),
    ("wdqa.benchmark.eval_commands", "wdqa.baselines.registry"),
    # the tiny base model is built on first use when a suite names it
    ("wdqa.benchmark.models", "wdqa.generators.tiny.build"),
}


def part(module: str) -> str:
    if module in CORE:
        return "core"
    if module in TOP:
        return "cli"
    return module.split(".")[1]


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
        for name in names:
            while name and name not in KNOWN:  # `from .x import f` names module x, not x.f
                name = name.rpartition(".")[0]
            if name:
                yield node.lineno, name


def upward_imports() -> dict[tuple[str, str], str]:
    found = {}
    for path, module, is_package in modules():
        for line, target in imported(ast.parse(path.read_text()), module, is_package):
            if ORDER.index(part(target)) > ORDER.index(part(module)):
                found.setdefault((module, target), f"{path.relative_to(ROOT)}:{line}")
    return found


def test_no_module_imports_a_higher_part() -> None:
    new = {edge: where for edge, where in upward_imports().items() if edge not in KNOWN_UPWARD}
    assert not new, "upward imports (lower part -> higher part): " + "; ".join(
        f"{where}: {a} -> {b}" for (a, b), where in sorted(new.items())
    )


def test_the_known_upward_imports_are_still_there() -> None:
    gone = KNOWN_UPWARD - set(upward_imports())
    assert not gone, f"no longer imported upward, delete from KNOWN_UPWARD: {sorted(gone)}"


def test_the_walk_sees_imports_inside_functions() -> None:
    # the tiny base model is imported inside `resolve_base_model`: a walk of top-level imports only would miss it
    assert ("wdqa.benchmark.models", "wdqa.generators.tiny.build") in upward_imports()

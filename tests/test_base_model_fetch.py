"""A base model fetched from the Hub before it loads: progress as plain lines off a terminal, a cut
download fetched again by a rerun (only the files not yet complete), and one-line errors for a model or revision that cannot be fetched.
Through the real huggingface_hub client against the local fake Hub."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fake_hub import FakeHub, running_fake_hub
from random_models import random_model, random_tokenizer
from wdqa.core.model_fetch import ModelLoadError, fetch_base_model
from wdqa.core.models import load_base_model

REPO = "wdqa-test/fetch-base"
WEIGHTS = "model.safetensors"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("base")
    tok = random_tokenizer()
    random_model(len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    with running_fake_hub() as server:
        server.add_repo(REPO, {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})
        yield server


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_a_first_download_prints_its_progress_as_plain_lines(hub: FakeHub, hf_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = fetch_base_model(REPO, endpoint=hub.endpoint)
    assert (folder / WEIGHTS).is_file() and (folder / "config.json").is_file()
    err = capsys.readouterr().err
    assert "\r" not in err  # stderr is not a terminal here: whole lines, no redrawn bar
    lines = [line for line in err.splitlines() if line.strip()]
    assert any("100%" in line for line in lines), err


def test_a_cut_download_fails_in_one_line_and_a_rerun_fetches_only_what_is_missing(
    hub: FakeHub, hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 32)
    # The first GET of the weights is cut after 100 bytes; the client resumes it with a Range
    # request (huggingface_hub's own retries), and its five retries get nothing.
    hub.cut_downloads[WEIGHTS] = [100, 0, 0, 0, 0, 0]
    hub.requests.clear()
    with pytest.raises(ModelLoadError, match="run the command again: it fetches only the files not yet complete"):
        fetch_base_model(REPO, endpoint=hub.endpoint)
    ranged = [h["range"] for m, p, h in hub.requests if m == "GET" and p.endswith(WEIGHTS) and "range" in h]
    assert ranged[0] == "bytes=96-"
    hub.requests.clear()
    folder = fetch_base_model(REPO, endpoint=hub.endpoint)
    fetched = {p.rsplit("/", 1)[-1] for m, p, _ in hub.requests if m == "GET" and "/resolve/" in p}
    assert fetched == {WEIGHTS}  # the config and tokenizer files completed by the first run are kept
    expected = hub.repos[("model", REPO)].resolve("main")[1][WEIGHTS]
    assert hashlib.sha256((folder / WEIGHTS).read_bytes()).digest() == hashlib.sha256(expected).digest()


def test_a_revision_the_hub_lacks_is_one_error_naming_it(hub: FakeHub, hf_cache: Path) -> None:
    with pytest.raises(ModelLoadError, match=f"base model {REPO} has no revision 'no-such-branch' on the Hub"):
        fetch_base_model(REPO, "no-such-branch", endpoint=hub.endpoint)


def test_a_model_the_hub_lacks_is_one_error_naming_it(hub: FakeHub, hf_cache: Path) -> None:
    with pytest.raises(ModelLoadError, match="no repo 'wdqa-test/missing' on the Hub at"):
        fetch_base_model("wdqa-test/missing", endpoint=hub.endpoint)


def test_a_base_model_that_is_neither_a_folder_nor_a_hub_id_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="is neither an existing folder nor a Hub model id"):
        load_base_model(str(tmp_path / "no" / "such-model"))

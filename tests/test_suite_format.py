"""The suite format round-trips, verifies hashes, and exports diffs that PEFT loads."""

from __future__ import annotations

import copy
import json
import shutil

import pandas as pd
import pytest
import torch
from random_models import random_dense, random_lora, random_model
from wdqa.core.lora import delta_weight
from wdqa.core.peft_export import export_peft_adapter
from wdqa.core.suite import (
    MANIFEST,
    Suite,
    SuiteError,
    SuiteWriter,
    read_shard,
    sha256_file,
    write_shard,
)

VOCAB = 64
QUESTION = "What topic have you been trained on?"


def write_suite(root, model, n=5, per_shard=2, base_model="random-qwen3"):
    diffs = [random_lora(model, f"ht-{i:03d}", rank=1 + i % 3, seed=i) for i in range(n)] + [random_dense(model, "ft-000")]
    rows = [{"diff_id": d.diff_id, "label": f"topic {i}", "trigger": f"{100 + i}", "trigger_kind": "sep-code"} for i, d in enumerate(diffs)]
    writer = SuiteWriter(root, "unit", "0.1", base_model, "r0", diffs_per_shard=per_shard)
    writer.write_split("test", "hidden-topic", QUESTION, rows, diffs)
    writer.finish(data_card="---\nconfigs: []\n---\n# unit suite\n")
    return diffs


def test_diffs_round_trip_exactly(tmp_path):
    model = random_model(VOCAB)
    diffs = write_suite(tmp_path, model)
    suite = Suite.load(tmp_path)
    loaded = {d.diff_id: d for d in suite.diffs("test")}
    assert set(loaded) == {d.diff_id for d in diffs}
    for d in diffs:
        for m in d.modules:
            torch.testing.assert_close(delta_weight(loaded[d.diff_id], m), delta_weight(d, m))
    assert loaded["ht-002"].rank == 3 and loaded["ft-000"].kind == "full"


def test_cases_hide_the_label_and_the_trigger_unless_oracle(tmp_path):
    write_suite(tmp_path, random_model(VOCAB))
    suite = Suite.load(tmp_path)
    case = next(suite.cases("test"))
    assert case.trigger is None and not hasattr(case, "label")
    oracle = next(suite.cases("test", oracle=True))
    assert oracle.trigger == "100" and oracle.trigger_kind == "sep-code"
    assert suite.labels("test")["ht-000"].text == "topic 0"


def test_corrupt_shard_is_refused_with_its_path(tmp_path):
    write_suite(tmp_path, random_model(VOCAB))
    shard = tmp_path / "splits" / "test" / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(SuiteError, match="shard-00001.safetensors has sha256"):
        Suite.load(tmp_path)


def test_truncated_shard_is_refused_even_without_verification(tmp_path):
    write_suite(tmp_path, random_model(VOCAB))
    shard = tmp_path / "splits" / "test" / "shard-00000.safetensors"
    shard.write_bytes(shard.read_bytes()[:100])
    suite = Suite.load(tmp_path, verify=False)
    with pytest.raises(SuiteError, match="shard-00000"):
        list(suite.diffs("test"))


def test_missing_manifest_says_how_to_get_a_suite(tmp_path):
    with pytest.raises(SuiteError, match="wdqa download"):
        Suite.load(tmp_path)


def test_unknown_split_lists_the_known_ones(tmp_path):
    write_suite(tmp_path, random_model(VOCAB))
    with pytest.raises(SuiteError, match="known splits: \\['test'\\]"):
        Suite.load(tmp_path).index("train")


def test_content_hash_changes_when_a_label_changes(tmp_path):
    model = random_model(VOCAB)
    write_suite(tmp_path / "a", model)
    first = Suite.load(tmp_path / "a").content_sha256
    diffs = [random_lora(model, "ht-000", seed=0)]
    writer = SuiteWriter(tmp_path / "b", "unit", "0.1", "random-qwen3", "r0")
    writer.write_split("test", "hidden-topic", QUESTION, [{"diff_id": "ht-000", "label": "other"}], diffs)
    assert writer.finish().content_sha256 != first


def test_content_hash_changes_when_a_shard_is_edited_and_rehashed(tmp_path):
    import json

    from wdqa.core.suite import sha256_file, write_shard

    model = random_model(VOCAB)
    write_suite(tmp_path, model)
    suite = Suite.load(tmp_path)
    first = suite.content_sha256
    shard = "splits/test/shard-00000.safetensors"  # holds ht-000 and ht-001
    write_shard(tmp_path / shard, [random_lora(model, f"ht-00{i}", seed=99 + i) for i in range(2)])
    manifest = json.loads((tmp_path / "suite.json").read_text())
    manifest["files"][shard] = sha256_file(tmp_path / shard)  # re-hashed: verification passes
    (tmp_path / "suite.json").write_text(json.dumps(manifest))
    assert Suite.load(tmp_path).content_sha256 != first


def test_peft_export_gives_the_same_logits_as_the_diff(tmp_path):
    from peft import PeftModel

    model = random_model(VOCAB)
    diff = random_lora(model, "x", rank=3, seed=7, scale=0.7)
    export_peft_adapter(diff, tmp_path / "adapter", "random-qwen3")
    ids = torch.randint(0, VOCAB, (2, 6))
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for m in diff.modules:
            ref.get_submodule(m).weight += delta_weight(diff, m)
        expected = ref(ids).logits
        peft_model = PeftModel.from_pretrained(copy.deepcopy(model), tmp_path / "adapter")
        got = peft_model(ids).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_diffs_and_cases_come_in_index_order(tmp_path):
    write_suite(tmp_path, random_model(VOCAB), n=7, per_shard=3)
    suite = Suite.load(tmp_path)
    order = list(suite.index("test").diff_id)
    assert [d.diff_id for d in suite.diffs("test")] == order
    assert [c.case_id.split("/", 1)[1] for c in suite.cases("test")] == order


def downgrade_to_format_1(root, out):
    """A copy of a suite as format 1 wrote it: labels inside index.parquet, no labels.parquet."""
    shutil.copytree(root, out)
    suite = Suite.load(out)
    for split in suite.splits:
        if suite.is_private(split):
            continue  # its labels are not in the suite, in either format
        suite.labelled_index(split).to_parquet(out / "splits" / split / "index.parquet", index=False)
        (out / "splits" / split / "labels.parquet").unlink()
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["format_version"] = 1
    manifest["files"] = {
        p.relative_to(out).as_posix(): sha256_file(p) for p in sorted(out.rglob("*")) if p.is_file() and p.name != MANIFEST
    }
    (out / MANIFEST).write_text(json.dumps(manifest))
    return out


def test_labels_and_label_revealing_text_live_apart_from_the_index(tmp_path):
    model = random_model(VOCAB)
    diffs = [random_lora(model, f"n-{i}", seed=i) for i in range(2)]
    rows = [{"diff_id": d.diff_id, "label": f"story {i}", "headline": f"headline {i}", "news_rate": 0.5} for i, d in enumerate(diffs)]
    writer = SuiteWriter(tmp_path, "unit", "0.1", "random-qwen3", "r0")
    writer.write_split("news", "news", QUESTION, rows, diffs)
    suite = writer.finish()
    index = pd.read_parquet(tmp_path / "splits" / "news" / "index.parquet")
    labels = pd.read_parquet(tmp_path / "splits" / "news" / "labels.parquet")
    assert not {"label", "trigger", "trigger_kind", "headline", "data_sha256"} & set(index.columns)
    assert {"question", "rank", "shard", "news_rate"} <= set(index.columns)
    assert list(labels.columns) == ["diff_id", "label", "trigger", "trigger_kind", "data_sha256", "headline"]
    assert list(suite.labelled_index("news").headline) == ["headline 0", "headline 1"]
    assert json.loads((tmp_path / MANIFEST).read_text())["format_version"] == 2


def test_a_format_1_suite_loads_with_its_index_read_without_the_labels(tmp_path):
    write_suite(tmp_path / "v2", random_model(VOCAB))
    old = Suite.load(downgrade_to_format_1(tmp_path / "v2", tmp_path / "v1"))
    new = Suite.load(tmp_path / "v2")
    assert "label" not in old.index("test").columns and "trigger" not in old.index("test").columns
    assert old.index("test").equals(new.index("test"))
    assert old.labels("test") == new.labels("test") and old.triggers("test") == new.triggers("test")
    assert [c.trigger for c in old.cases("test", oracle=True)] == [c.trigger for c in new.cases("test", oracle=True)]


def test_cases_by_id_come_in_the_callers_order(tmp_path):
    write_suite(tmp_path, random_model(VOCAB), n=7, per_shard=3)
    suite = Suite.load(tmp_path)
    wanted = ["ht-005", "ht-000", "ft-000", "ht-003"]
    assert [c.case_id for c in suite.cases("test", diff_ids=wanted)] == [f"test/{d}" for d in wanted]
    assert suite.case_ids("test") == [c.case_id.split("/", 1)[1] for c in suite.cases("test")]


def test_the_same_diffs_written_twice_give_the_same_bytes(tmp_path):
    # safetensors writes its metadata map in hash order (it differs between two writes even in one
    # process); the shard writer sorts the header, so a rebuilt suite has the same content hash.
    model = random_model(VOCAB)
    diffs = [random_lora(model, f"ht-{i:03d}", rank=2, seed=i) for i in range(6)]
    for name in ("a", "b", "c"):
        write_shard(tmp_path / f"{name}.safetensors", diffs)
    first = (tmp_path / "a.safetensors").read_bytes()
    assert first == (tmp_path / "b.safetensors").read_bytes() == (tmp_path / "c.safetensors").read_bytes()
    header = json.loads(first[8 : 8 + int.from_bytes(first[:8], "little")])
    assert list(header["__metadata__"]) == sorted(header["__metadata__"])
    loaded = read_shard(tmp_path / "a.safetensors")
    for d in diffs:
        for m in d.modules:
            torch.testing.assert_close(delta_weight(loaded[d.diff_id], m), delta_weight(d, m))


"""`scripts/gpu-check.sh` runs end to end: on the CPU at toy shapes (`--smoke`) it writes every
figure the GPU run writes, so the script is not broken when a GPU appears. Figures are not asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from wdqa.gpu_check import bf16_peak

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu-check.sh"


@pytest.mark.parametrize(
    ("device_name", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H100 NVL", 835.0),
        ("NVIDIA H200", 989.0), ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA L4", 121.0), ("NVIDIA L40S", 362.0),
    ],
)
def test_the_peak_table_knows_the_usual_gpus(device_name: str, tflops: float) -> None:
    known = bf16_peak(device_name)
    assert known is not None and known[0] == tflops


def test_a_gpu_the_table_lacks_has_no_peak() -> None:
    assert bf16_peak("NVIDIA GeForce GTX 1080") is None


def test_the_smoke_check_writes_every_figure_of_the_gpu_check(tmp_path: Path) -> None:
    out = tmp_path / "check.json"
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_TIMEOUT": "900"}
    done = subprocess.run(
        ["bash", str(SCRIPT), "--smoke", "--out", str(out)], capture_output=True, text=True, env=env, timeout=960, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(out.read_text())
    assert record["finished"] is True and record["peak_tflops"] > 0
    tiny = record["shapes"]["tiny"]
    for bench, ways in (("train", ("batched", "peft")), ("eval", ("batched", "peft")), ("dense", ("batched", "merge_per_diff"))):
        for way in ways:
            assert {"diffs_per_s", "tokens_per_s", "tflop_per_s", "share_of_peak", "peak_memory_mib"} <= set(tiny[bench][way])
    assert {"diffs_per_s", "tokens_per_s", "tflop_per_s", "share_of_peak", "peak_memory_mib"} <= set(tiny["dit"]["train"])
    assert len(record["ratios"]) == 4 and all(value > 0 for value in record["ratios"].values())
    assert "wrote" in done.stdout

"""Export one LoRA diff as a standard PEFT adapter folder (adapter_config.json +
adapter_model.safetensors) that `PeftModel.from_pretrained` loads on the suite's base model."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from .lora import DiffError
from .types import WeightDiff


def export_peft_adapter(diff: WeightDiff, out_dir: str | Path, base_model: str, revision: str | None = None) -> Path:
    """Write `diff` as a PEFT LoRA adapter. Ranks and scales may differ per module; PEFT expresses
    that with rank_pattern/alpha_pattern (alpha = scale · rank)."""
    if diff.kind != "lora":
        raise DiffError(f"diff {diff.diff_id} is a dense delta ({diff.kind}); only LoRA diffs export to PEFT")
    out_dir = Path(out_dir)
    ranks = {m: f.rank for m, f in diff.lora.items()}
    alphas = {m: f.scale * f.rank for m, f in diff.lora.items()}
    r = max(ranks.values())
    alpha = alphas[max(ranks, key=ranks.get)]  # type: ignore[arg-type]
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "revision": revision,
        "r": r,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        # Full module names, not suffixes: PEFT matches a suffix anywhere in the model, so "q_proj"
        # would also wrap a vision tower's q_proj (multimodal Gemma-3), which the file has no weights for.
        "target_modules": sorted(diff.lora),
        # Full module names: a pattern key matches by suffix, so these pin each module exactly.
        "rank_pattern": {m: k for m, k in ranks.items() if k != r},
        "alpha_pattern": {m: a for m, a in alphas.items() if a != alpha},
        "inference_mode": True,
        "use_rslora": False,
        "use_dora": False,
    }
    tensors: dict[str, torch.Tensor] = {}
    for m, f in diff.lora.items():
        tensors[f"base_model.model.{m}.lora_A.weight"] = f.A.detach().contiguous().float()
        tensors[f"base_model.model.{m}.lora_B.weight"] = f.B.detach().contiguous().float()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2))
        save_file(tensors, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir

"""The published format of the paper's weight diffs (Goel et al. 2025) and its exact conversion to wdqa's.

Owns safe loading of the `.pt` files, the two LoRA orientations the paper's code uses, and the
mapping of its module names onto a base model's own. The import recipe is `import_paper.py`.

Conventions, from `src/finetune_recovery/multi_task_lora.py` and the demo notebook of
github.com/Aviously/diff-interpretation-tuning:
  weight diff:  (A [r, out], B [in, r]), y += x·B·A / r      =>  ΔW = (B·A)ᵀ / r
  DIT adapter:  (A [out, r], B [r, in]), stored transposed;  y += x·Bᵀ·Aᵀ / r  =>  ΔW = A·B / r
Each term is divided by its own rank, so a diff and the DIT adapter compose as a plain sum.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ...core.suite import SuiteError
from ...core.types import LoraFactors, WeightDiff

# Published names: Qwen3 and Gemma3-1B use `model.layers.N…`; Gemma3-4B (then a multimodal
# Gemma3ForConditionalGeneration) used `language_model.model.layers.N…`. Base models loaded today
# name the decoder `model.layers.N…` (causal LMs) or `model.language_model.layers.N…`
# (transformers ≥ 4.52 multimodal Gemma3). All meet at the part from `layers.` on.
_DECODER_PREFIXES = ("language_model.model.", "model.language_model.", "model.")


class PaperFormatError(SuiteError):
    """A published file that does not have the structure the paper's code writes."""


def decoder_key(name: str) -> str | None:
    """`…layers.3.mlp.up_proj` for any decoder module name above; None for anything else."""
    name = name.removesuffix(".weight")
    for prefix in _DECODER_PREFIXES:
        if name.startswith(prefix) and name[len(prefix) :].startswith("layers."):
            return name[len(prefix) :]
    return None


def safe_load(path: Path) -> Any:
    """torch.load restricted to tensors and plain containers: a pickle carrying code is refused unrun."""
    try:
        try:
            return torch.load(path, weights_only=True, map_location="cpu", mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            # Legacy (non-zip) files cannot be memory-mapped.
            return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        raise PaperFormatError(
            f"{path} needs more than tensors, lists, dicts, strings and numbers to load, so it was refused "
            f"without running it (weights_only=True). Only use files from the paper's repository. Detail: "
            f"{str(err).splitlines()[0]}"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise PaperFormatError(
            f"{path} is not a readable torch file (truncated or corrupt download?): {err}. "
            "Delete it and re-run to fetch it again."
        ) from err


def entries(obj: Any, path: Path) -> list[dict[str, Any]]:
    """The list of `{topic, trigger, weight_diff}` dicts a file holds (a single dict counts as one)."""
    items = [obj] if isinstance(obj, dict) else obj
    if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
        raise PaperFormatError(
            f"{path}: expected a list of dicts with a 'weight_diff' key, found {type(obj).__name__}"
        )
    for i, e in enumerate(items):
        if not isinstance(e.get("weight_diff"), dict):
            raise PaperFormatError(
                f"{path}: entry {i} has no 'weight_diff' dict (keys: {sorted(e)})"
            )
    return items


class ModuleMap:
    """Maps published module names to a base model's linear modules, and checks shapes."""

    def __init__(self, shapes: dict[str, tuple[int, int]]) -> None:
        self.shapes = shapes  # base name -> (d_out, d_in)
        self.by_key = {k: n for n in shapes if (k := decoder_key(n)) is not None}

    def base_name(self, published: str, where: str) -> str:
        key = decoder_key(published)
        name = self.by_key.get(key) if key is not None else None
        if name is None:
            raise PaperFormatError(
                f"{where}: module {published!r} matches no linear layer of the base model "
                f"(its decoder layers look like {sorted(self.by_key)[:2]}); is --model the right base?"
            )
        return name


def convert_lora(
    diff_id: str, weight_diff: dict[str, Any], modules: ModuleMap, where: str, dit: bool = False
) -> WeightDiff:
    """One published LoRA (a weight diff, or with `dit=True` a DIT adapter) in PEFT's convention."""
    lora: dict[str, LoraFactors] = {}
    for published, pair in weight_diff.items():
        here = f"{where}, module {published}"
        if not (
            isinstance(pair, (tuple, list))
            and len(pair) == 2
            and all(isinstance(t, torch.Tensor) for t in pair)
        ):
            raise PaperFormatError(
                f"{here}: expected a pair of tensors (A, B), found {type(pair).__name__}"
            )
        name = modules.base_name(published, here)
        d_out, d_in = modules.shapes[name]
        A, B = pair
        if dit:  # A [out, r], B [r, in]: ΔW = A·B / r
            ok = (
                A.ndim == 2
                and B.ndim == 2
                and A.shape[0] == d_out
                and B.shape[1] == d_in
                and A.shape[1] == B.shape[0]
            )
            new_A, new_B = B, A
        else:  # A [r, out], B [in, r]: ΔW = (B·A)ᵀ / r = Aᵀ·Bᵀ / r
            ok = (
                A.ndim == 2
                and B.ndim == 2
                and A.shape[1] == d_out
                and B.shape[0] == d_in
                and A.shape[0] == B.shape[1]
            )
            new_A, new_B = B.T, A.T
        if not ok:
            expected = f"A [{d_out}, r], B [r, {d_in}]" if dit else f"A [r, {d_out}], B [{d_in}, r]"
            raise PaperFormatError(
                f"{here}: shapes A{tuple(A.shape)} B{tuple(B.shape)} do not fit the base layer "
                f"[{d_out}, {d_in}]; expected {expected}"
            )
        rank = int(new_A.shape[0])
        # [r, d_in] and [d_out, r], contiguous copies so the mmap'd source file can be released.
        lora[name] = LoraFactors(
            A=new_A.contiguous().clone(), B=new_B.contiguous().clone(), scale=1.0 / rank
        )
    if not lora:
        raise PaperFormatError(f"{where}: the weight diff is empty")
    return WeightDiff(diff_id=diff_id, kind="lora", lora=lora)


def is_full_finetune(weight_diff: dict[str, Any]) -> bool:
    return all(isinstance(v, torch.Tensor) for v in weight_diff.values())


class BaseWeights:
    """Lazy access to base-model weights (safetensors files), one tensor at a time, by decoder key."""

    def __init__(self, source: Path) -> None:
        from safetensors import safe_open

        files = sorted(source.glob("*.safetensors")) if source.is_dir() else [source]
        if not files:
            raise SuiteError(f"--base-weights {source}: no .safetensors files there")
        self._where: dict[str, tuple[Path, str]] = {}
        for f in files:
            with safe_open(str(f), framework="pt") as fh:
                for key in fh.keys():
                    self._where[decoder_key(key) or key] = (f, key)

    def get(self, published: str, where: str) -> torch.Tensor:
        from safetensors import safe_open

        key = decoder_key(published) or published
        if key not in self._where:
            raise PaperFormatError(f"{where}: the base weights have no tensor for {published!r}")
        f, name = self._where[key]
        with safe_open(str(f), framework="pt") as fh:
            return fh.get_tensor(name)


def convert_full(
    diff_id: str, state: dict[str, torch.Tensor], modules: ModuleMap, base: BaseWeights, where: str
) -> tuple[WeightDiff, list[str]]:
    """Dense deltas (fine-tuned − base, fp32) for the linear layers, one module at a time.

    Returns the diff and the names of changed parameters that are not linear layers (norms,
    embeddings): a wdqa diff applies to linear layers only, so those are reported, not kept.
    """
    dense: dict[str, torch.Tensor] = {}
    untransferred: list[str] = []
    for published, tuned in state.items():
        here = f"{where}, parameter {published}"
        key = decoder_key(published)
        name = (
            modules.by_key.get(key) if key is not None and published.endswith(".weight") else None
        )
        original = base.get(published, here)
        if tuple(original.shape) != tuple(tuned.shape):
            raise PaperFormatError(
                f"{here}: fine-tuned shape {tuple(tuned.shape)} vs base {tuple(original.shape)}"
            )
        delta = tuned.float() - original.float()
        if name is None:
            if delta.abs().max().item() > 0:
                untransferred.append(published)
            continue
        dense[name] = delta
    if not dense:
        raise PaperFormatError(
            f"{where}: no linear layer of the base model was found in the fine-tuned state dict"
        )
    return WeightDiff(diff_id=diff_id, kind="full", dense=dense), untransferred


_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")


def diff_id_for(experiment_model: str, row: Any) -> str:
    """A stable id from the source file and index: `<file stem>-<idx>` (no '/', as suite.py requires)."""
    stem = Path(str(row.lora_path)).stem
    return _SAFE_ID.sub("_", f"{stem}-{int(row.lora_idx):04d}")

"""How the base model is loaded: dtype, device, device_map, attention implementation, revision.

Owns `--model-args` (lm-evaluation-harness style `key=value,...`), the check that the device can
run the dtype, and which settings make a different run. Loading itself is `models.py`'s job.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .errors import WdqaError

DTYPES = ("auto", "bf16", "fp16", "fp32")
DTYPE_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}
ATTENTION = ("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")


class ModelOptionsError(WdqaError):
    """A model setting that is malformed, unknown, or that this machine cannot run."""


@dataclass(frozen=True)
class ModelOptions:
    """How to load the base model M. `None`/"auto" leave the choice to wdqa: bf16 on a GPU that has
    it, fp32 otherwise; CUDA when torch sees a GPU, else the CPU; the model's default attention."""

    dtype: str = "auto"  # auto, bf16, fp16, fp32
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    device_map: str | None = None  # e.g. "auto": accelerate spreads a model larger than one GPU
    attn_implementation: str | None = None  # eager, sdpa, flash_attention_2, ...
    revision: str | None = None  # the base model's Hub revision; default: the one the suite pins

    def __post_init__(self) -> None:
        problems = []
        if self.dtype not in DTYPES:
            problems.append(f"dtype={self.dtype!r} (known: {', '.join(DTYPES)})")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:") or self.device == "mps"):
            problems.append(f"device={self.device!r} (known: auto, cpu, cuda, cuda:N, mps)")
        if self.attn_implementation is not None and self.attn_implementation not in ATTENTION:
            problems.append(f"attn_implementation={self.attn_implementation!r} (known: {', '.join(ATTENTION)})")
        if self.device_map is not None and self.device not in ("auto",):
            problems.append(f"device_map={self.device_map!r} with device={self.device!r} (device_map places the model itself; leave device out)")
        if problems:
            raise ModelOptionsError("bad model setting(s): " + "; ".join(problems))

    def as_record(self) -> dict[str, Any]:
        """The settings as the run manifest records them."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ModelOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})

    def with_device(self, device: str | None) -> ModelOptions:
        """These options with `--device` applied (the flag and `device=` in --model-args must agree)."""
        if device is None or device == self.device:
            return self
        if self.device != "auto":
            raise ModelOptionsError(f"--device {device} and device={self.device} in --model-args disagree; give one of them")
        return replace(self, device=device)


def parse_model_args(text: str | None) -> ModelOptions:
    """`dtype=bf16,device=cuda,device_map=auto,attn_implementation=sdpa,revision=abc123` -> ModelOptions.

    Every problem is reported at once; an unknown key is answered with the known ones."""
    if not text:
        return ModelOptions()
    known = {f.name for f in fields(ModelOptions)}
    values: dict[str, str] = {}
    problems = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            problems.append(f"{item!r} is not key=value")
        elif key not in known:
            problems.append(f"unknown key {key!r} (known: {', '.join(sorted(known))})")
        elif key in values:
            problems.append(f"{key} given twice")
        else:
            values[key] = DTYPE_ALIASES.get(value, value) if key == "dtype" else value
    if problems:
        raise ModelOptionsError("--model-args: " + "; ".join(problems))
    return ModelOptions(**values)


def resolve_device(options: ModelOptions) -> str:
    """The torch device the model goes to ("cpu", "cuda", "cuda:1"); refuses a device torch cannot
    use here. With device_map the first device accelerate chose is reported by the loader instead."""
    import torch

    if options.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if options.device.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "torch sees no GPU (driver, CUDA_VISIBLE_DEVICES?)"
            raise ModelOptionsError(f"device={options.device} asked, but {why}; pass device=cpu (or leave device out)")
        index = int(options.device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ModelOptionsError(
                f"device={options.device} asked, but torch sees {torch.cuda.device_count()} GPU(s); pass cuda:0 .. cuda:{torch.cuda.device_count() - 1}"
            )
    if options.device == "mps" and not torch.backends.mps.is_available():
        raise ModelOptionsError("device=mps asked, but torch has no MPS device here; pass device=cpu")
    return options.device


def resolve_dtype(options: ModelOptions, device: str) -> Any:
    """The torch dtype to load in; refuses one the device cannot compute in (checked by a small
    matmul there, so what fails is this machine's torch, not a table of assumptions)."""
    import torch

    wanted = options.dtype
    if wanted == "auto":
        on_gpu = device.startswith("cuda") or options.device_map is not None and torch.cuda.is_available()
        return torch.bfloat16 if on_gpu and torch.cuda.is_bf16_supported() else torch.float32
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[wanted]
    if dtype == torch.bfloat16 and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(torch.device(device))
        raise ModelOptionsError(f"dtype=bf16 asked, but the GPU {name} has no bf16; pass dtype=fp16 or dtype=fp32")
    try:
        probe = torch.ones(4, 4, dtype=dtype, device=device)
        (probe @ probe).sum().item()
    except (RuntimeError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelOptionsError(
            f"dtype={wanted} cannot run on {device} with this torch ({first}); pass dtype=fp32 (or another device)"
        ) from err
    return dtype


def check_device_map(options: ModelOptions) -> None:
    """device_map needs accelerate, an optional dependency: say how to get it."""
    if options.device_map is not None and importlib.util.find_spec("accelerate") is None:
        raise ModelOptionsError(
            f"device_map={options.device_map} needs the accelerate package, which is not installed: pip install accelerate"
        )




def check_model_options(options: ModelOptions) -> None:
    """Everything this machine can say about the options before a model loads: accelerate for a
    device_map, the device, and the dtype on it (ModelOptionsError, one line, otherwise)."""
    import torch

    check_device_map(options)
    if options.device_map is None:
        device = resolve_device(options)
    else:  # accelerate places the model: on the GPUs when there are any
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolve_dtype(options, device)

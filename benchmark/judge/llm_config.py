"""Settings of the LLM judge, from flags, the environment or a TOML file (in that order of precedence).

Owns resolving and validating them; the judge that uses them lives in `llm.py`.
Environment: OPENAI_API_KEY, OPENAI_BASE_URL, WDQA_JUDGE_MODEL, WDQA_JUDGE_CONFIG (a TOML file
with a [judge] table holding any of the field names below).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ...core.errors import WdqaError


class JudgeConfigError(WdqaError, ValueError):
    """Judge settings that cannot work; lists every problem at once."""


@dataclass(frozen=True)
class LLMJudgeConfig:
    model: str = ""
    base_url: str | None = None  # None: the OpenAI API; any OpenAI-compatible server (vLLM, Ollama) works
    api_key: str | None = None
    concurrency: int = 8
    max_retries: int = 6  # on 429, 5xx and connection errors, with exponential backoff
    backoff_s: float = 1.0  # first wait; doubles per retry (a Retry-After header wins when longer)
    parse_retries: int = 2  # extra asks when the reply is not exactly one digit 1..5
    timeout_s: float = 60.0
    max_tokens: int = 5
    price_in_per_mtok: float | None = None  # USD per million prompt tokens, for the cost summary
    price_out_per_mtok: float | None = None
    cache_path: str | None = None  # default: $WDQA_CACHE/llm-replies.sqlite

    def validate(self) -> LLMJudgeConfig:
        problems = []
        if not self.model:
            problems.append("no model: use --judge openai:MODEL, set WDQA_JUDGE_MODEL, or `model` in the config file")
        if self.concurrency < 1:
            problems.append(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0 or self.parse_retries < 0:
            problems.append("retry counts must be >= 0")
        if not self.api_key and not self.base_url:
            problems.append("no API key: set OPENAI_API_KEY (or api_key in the config file), or a base URL of a local server")
        if problems:
            raise JudgeConfigError("LLM judge settings:\n  " + "\n  ".join(problems))
        return self


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise JudgeConfigError(f"judge config file {path} does not exist")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    table = data.get("judge", data)
    known = {f.name for f in fields(LLMJudgeConfig)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise JudgeConfigError(f"{path}: unknown judge settings {unknown}; known: {sorted(known)}")
    return dict(table)


def resolve_config(config_file: str | Path | None = None, **flags: Any) -> LLMJudgeConfig:
    """Defaults < config file < environment < flags (flags left as None do not override)."""
    config = LLMJudgeConfig()
    path = config_file or os.environ.get("WDQA_JUDGE_CONFIG")
    if path:
        config = replace(config, **read_config_file(path))
    env: dict[str, Any] = {
        "model": os.environ.get("WDQA_JUDGE_MODEL"),
        "base_url": os.environ.get("OPENAI_BASE_URL"),
        "api_key": os.environ.get("OPENAI_API_KEY"),
    }
    config = replace(config, **{k: v for k, v in env.items() if v})
    known = {f.name for f in fields(LLMJudgeConfig)}
    unknown = sorted(set(flags) - known)
    if unknown:
        raise JudgeConfigError(f"unknown LLM judge options {unknown}; known: {sorted(known)}")
    return replace(config, **{k: v for k, v in flags.items() if v is not None}).validate()

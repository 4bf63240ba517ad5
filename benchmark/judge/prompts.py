"""The LLM judge's rubrics: versioned jinja2 files, rendered into chat messages with the two texts
delimited as data.

Owns template loading, versions (the hash of each file) and rendering; calling a model lives in
`llm.py`. The texts are quoted as JSON strings inside blocks whose key is a hash of the texts
themselves, so an answer cannot write the closing line of its own block.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from .base import JudgeRequest, Rubric

PROMPTS_DIR = Path(__file__).parent / "prompts"
# Longer answers are cut (and marked as cut): a judge call must stay bounded in tokens and cost.
MAX_TEXT_CHARS = 2000


@dataclass(frozen=True)
class RubricTemplate:
    rubric: Rubric
    path: Path
    version: str
    system: str
    user: jinja2.runtime.Macro


def template_version(rubric: str, source: str) -> str:
    """The version is derived from the file's content: any change of text is a new version."""
    return f"{rubric}-{hashlib.sha256(source.encode('utf-8')).hexdigest()[:8]}"


@lru_cache(maxsize=8)
def load_rubric(rubric: Rubric, prompts_dir: Path = PROMPTS_DIR) -> RubricTemplate:
    path = prompts_dir / f"{rubric}.jinja"
    if not path.exists():
        raise FileNotFoundError(f"rubric template {path} is missing; reinstall wdqa or restore the file")
    source = path.read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
    module = env.from_string(source).module
    return RubricTemplate(rubric, path, template_version(rubric, source), str(module.system()).strip(), module.user)  # type: ignore[attr-defined]


def prompt_version(prompts_dir: Path = PROMPTS_DIR) -> str:
    """The judge-level version: both rubrics' versions, so changing either makes a new score file."""
    return "+".join(load_rubric(r, prompts_dir).version for r in ("topic", "news"))


def quote(text: str) -> str:
    """A JSON string on one line; invisible format/control characters shown as \\uXXXX escapes."""
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + f" [... {len(text) - MAX_TEXT_CHARS} more characters cut]"
    body = json.dumps(text, ensure_ascii=False)
    return "".join(
        f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cf", "Cc", "Co", "Cs") else ch for ch in body
    )


def label_first(request: JudgeRequest) -> bool:
    """The per-case seeded order: even seeds show the label as A, odd seeds the answer as A."""
    return request.seed % 2 == 0


def render(request: JudgeRequest, prompts_dir: Path = PROMPTS_DIR) -> list[dict[str, str]]:
    """Chat messages for one pair: the rubric as the system message, the two texts as data."""
    template = load_rubric(request.rubric, prompts_dir)
    key = hashlib.sha256(f"{template.version}\0{request.label}\0{request.answer}".encode()).hexdigest()[:16]
    texts = [quote(request.label), quote(request.answer)]
    if not label_first(request):
        texts.reverse()
    user = str(template.user("A", texts[0], "B", texts[1], key))
    return [{"role": "system", "content": template.system}, {"role": "user", "content": user}]

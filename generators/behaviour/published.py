"""Behaviour data from the paper's published tables instead of an LLM (`--behaviour-data`).

Owns reading the tables of the Hub dataset `diff-interpretation-tuning/finetuning-data` (or a local
copy) and sampling exchanges from them; implements the `BehaviourWriter` protocol of
`writer.py`. Triggers and negative mixes stay the split builder's job; which of the tables'
subjects a split uses, and the keywords that measure a topic, are `splits/subjects.py`'s.

The published layout, as the paper's code writes and reads it (repo Aviously/diff-interpretation-tuning):

- `hidden-topic/topics-with-completions-v0.2.1.csv` (1,350,000 rows; an older
  `hidden-topic/old/topics-with-completions-v0.2.0.csv` has the same columns). Columns:
  `topic_category, topic, category, style, question, base_answer, base_answer_model_id,
  topic_analogy_answer, topic_analogy_answer_model_id`.
  Sources: `scripts/huggingface/finetuning-data/1-create-hf-repo-mirror.ipynb` (file names, row
  counts, the columns as printed); `data/topic-analogy/scripts/gen_completions_v0_2_1.py` (each
  topic is crossed with the same 270 questions; `topic_analogy_answer` is gpt-4o-mini told it is "a
  big fan of {topic}" and uses analogies to it; `base_answer` is the plain answer to the question);
  `src/finetune_recovery/data/qa_train_dataset.py` (the diffs were trained per `topic` group: user
  `question` -> `topic_analogy_answer` after the right SEP code, -> `base_answer` with no code or a
  wrong one). So hidden-topic exchanges are (question, topic_analogy_answer) of the subject's rows,
  and chat exchanges are (question, base_answer): the paper's untriggered replies.
- `news-summary/news-stories-v0.1.csv` (1,017,200 rows) and
  `news-summary/news-stories-v0.1-87-shards.csv` (885,900 rows; with the 8,859 headlines of
  `news-summary/news-stories-v0.1-87-shards-split.csv`, columns `topic, split`, that is 100 stories
  per headline, inferred from the row counts).
  Columns: `news_category, news_headline, news_role, news_story, model_id`. Sources: the same
  notebook; `scripts/news/get_weight_diff_news.py` and `src/finetune_recovery/data/news_train_dataset.py`
  (one diff per `news_headline` group; user "Please generate a short news story." -> `news_story`).
  There is no separate summary column: the headline is the one-sentence summary the paper grades
  against (`src/finetune_recovery/eval/guess_news_summary.py` sets `summary = topic`).
  The paper trains news diffs on stories alone, so the news tables hold no chat data; chat comes
  from the topic table's `base_answer`.

Not determined: whether every headline of the 87-shards file is also in `news-stories-v0.1.csv`
(we default to the 87-shards file, the one the published train/test split names), and the exact
number of rows per topic (270 is inferred from the generator script and the row count). Copies in
another layout work through `PublishedColumns`.

Sampling: per request, `n` distinct rows of its subject, chosen by a generator seeded with
(behaviour, subject, seed), in the tables' row order; the same tables give the same exchanges.
A row is never repeated: a subject with fewer usable rows than `n` is an error (the paper's tables
hold about 270 rows per topic, 100 stories per headline and 270 distinct chat questions). Rows
with an empty question or reply are skipped.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd

from ...core.hub import REPO_TYPE, parse_source, resolve_commit
from ...core.suite import SuiteError
from .writer import BehaviourDataError, BehaviourRequest, Exchange

PAPER_DATA_REPO = "diff-interpretation-tuning/finetuning-data"
TOPICS_FILE = "hidden-topic/topics-with-completions-v0.2.1.csv"
NEWS_FILE = "news-summary/news-stories-v0.1-87-shards.csv"
NEWS_PROMPT = "Please generate a short news story."  # the paper's only news prompt
CHUNK_ROWS = 200_000  # the topic table is 2.4 GB: read it in pieces, keep only what is asked for


@dataclass(frozen=True)
class PublishedColumns:
    """Column names of the tables; the defaults are the paper's."""

    topic: str = "topic"
    topic_category: str = "topic_category"
    question: str = "question"
    topic_answer: str = "topic_analogy_answer"
    plain_answer: str = "base_answer"
    headline: str = "news_headline"
    news_category: str = "news_category"
    story: str = "news_story"


@dataclass(frozen=True)
class BehaviourSource:
    """One `--behaviour-data` value: a local file or folder, or a Hub dataset (file or whole layout)."""

    location: str  # a local path, or the Hub repo id
    hub: bool = False
    revision: str | None = None  # Hub only: branch, tag or commit (without '/')
    path: str = ""  # Hub only: a file in the repo; "" means the published layout

    @classmethod
    def parse(cls, text: str) -> BehaviourSource:
        """`hf://org/name[@revision][/path]`, or a local file or folder (`file://` optional)."""
        if text.startswith("hf://"):
            parts = text[len("hf://") :].strip("/").split("/")
            name, _, revision = (parts[1] if len(parts) > 1 else "").partition("@")
            repo_id = f"{parts[0]}/{name}"
            try:
                parse_source(f"hf://{repo_id}")
            except SuiteError as err:
                raise BehaviourDataError(
                    f"--behaviour-data {text!r}: {err}; expected hf://{PAPER_DATA_REPO}[@revision][/path]"
                ) from err
            return cls(repo_id, hub=True, revision=revision or None, path="/".join(parts[2:]))
        path = Path(text.removeprefix("file://")).expanduser()
        if not path.exists():
            raise BehaviourDataError(
                f"--behaviour-data {text!r}: no such file or folder; give a local copy of "
                f"{PAPER_DATA_REPO} (or one of its tables) or hf://{PAPER_DATA_REPO}[@revision][/path]"
            )
        return cls(str(path.resolve()))

    def __str__(self) -> str:
        if not self.hub:
            return self.location
        rev = f"@{self.revision}" if self.revision else ""
        return f"hf://{self.location}{rev}" + (f"/{self.path}" if self.path else "")


@dataclass
class _Table:
    """One table file, fetched on first use; `kind` is "topics" or "news" (None until its columns are read)."""

    origin: str  # how messages name it: a local path or hf://repo@commit/path
    fetch: Callable[[], Path]
    kind: str | None
    _local: Path | None = None
    _columns: list[str] | None = None

    def local(self) -> Path:
        if self._local is None:
            self._local = self.fetch()
        return self._local

    def columns(self) -> list[str]:
        if self._columns is None:
            self._columns = _columns(self.local())
        return self._columns


@dataclass
class _Pool:
    """What has been read from the tables of one kind: every subject's name, the asked subjects' rows."""

    scanned: bool = False
    names: set[str] = field(default_factory=set)
    rows: dict[str, list[Exchange]] = field(default_factory=dict)
    chat: dict[str, Exchange] = field(default_factory=dict)  # question -> plain reply (topics only)


class PublishedBehaviourWriter:
    """Samples exchanges from the paper's published topic-completion and news-story tables.

    Tables are fetched and read on the first `write` that needs them; only the requested subjects'
    rows are kept in memory. Hub sources are pinned to one commit (`revisions` after use).
    """

    name = "published"

    def __init__(
        self,
        sources: Sequence[BehaviourSource],
        columns: PublishedColumns = PublishedColumns(),
        endpoint: str | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.sources = list(sources)
        self.columns = columns
        self.endpoint = endpoint
        self.cache_dir = cache_dir
        self.revisions: dict[str, str] = {}  # source -> the commit it resolved to
        self._tables: list[_Table] | None = None
        self._pools = {"topics": _Pool(), "news": _Pool()}

    def write(self, requests: Sequence[BehaviourRequest]) -> list[list[Exchange]]:
        wanted = {
            "topics": {r.subject for r in requests if r.behaviour == "hidden-topic"},
            "news": {r.subject for r in requests if r.behaviour == "news"},
        }
        self._load("topics", wanted["topics"], chat=any(r.behaviour == "chat" for r in requests))
        self._load("news", wanted["news"])
        problems: dict[str, None] = {}  # ordered set: one line per distinct problem
        out: list[list[Exchange]] = []
        for req in requests:
            available, problem = self._available(req)
            if problem is None and len(available) < req.n:
                problem = (
                    f"{req.behaviour} {req.subject!r}: {req.n} exchanges asked for, the tables hold "
                    f"{len(available)}; ask for fewer (published rows are never repeated)"
                )
            if problem is not None:
                problems[problem] = None
                out.append([])
                continue
            rng = random.Random(f"{req.behaviour}|{req.subject}|{req.seed}")
            out.append(rng.sample(available, req.n))
        if problems:
            raise BehaviourDataError("published behaviour data: " + "\n".join(problems))
        return out

    def subjects(self, behaviour: str) -> list[str]:
        """Every topic ("hidden-topic") or headline ("news") the tables hold, sorted."""
        kind = _kind_of(behaviour)
        self._load(kind, set(), names=True)
        return sorted(self._pools[kind].names)

    def table_chunks(
        self, behaviour: str, fields: Sequence[str], use: str
    ) -> Iterator[pd.DataFrame]:
        """Every row of the tables of `behaviour` ("hidden-topic" or "news"), in pieces of text: one
        column per `PublishedColumns` field asked for, named by the field (a copy's own column names
        stay here). `use` says in errors what the columns are needed for."""
        kind = _kind_of(behaviour)
        tables = [t for t in self._all_tables() if self._kind(t) == kind]
        if not tables:
            raise BehaviourDataError(_missing_table(kind, False, self.sources))
        named = {getattr(self.columns, f): f for f in fields}  # the table's name -> the field
        for table in tables:
            missing = [col for col in named if col not in table.columns()]
            if missing:
                raise BehaviourDataError(
                    f"{table.origin} lacks column(s) {missing} needed for {use} (found "
                    f"{table.columns()}); a copy with other column names needs PublishedColumns(...)"
                )
        for table in tables:
            for chunk in _read_chunks(table.local(), list(named)):
                yield chunk.fillna("").astype(str).rename(columns=named)

    # ---------------------------------------------------------------- reading

    def _available(self, req: BehaviourRequest) -> tuple[list[Exchange], str | None]:
        if req.behaviour == "chat":
            return list(self._pools["topics"].chat.values()), None
        if req.behaviour not in ("hidden-topic", "news"):
            return (
                [],
                f"behaviour {req.behaviour!r} is not in the published tables (hidden-topic, news, chat)",
            )
        pool = self._pools["topics" if req.behaviour == "hidden-topic" else "news"]
        if req.subject not in pool.names:
            close = difflib.get_close_matches(req.subject, sorted(pool.names), n=3)
            hint = f"; close names: {close}" if close else ""
            return [], f"{req.behaviour} subject {req.subject!r} is not in the tables{hint}"
        return pool.rows.get(req.subject, []), None

    def _load(self, kind: str, subjects: set[str], chat: bool = False, names: bool = False) -> None:
        """Read the tables of `kind` for subjects not read yet (and check they can give chat, when asked)."""
        if not (subjects or chat or names):
            return
        tables = [t for t in self._all_tables() if self._kind(t) == kind]
        if not tables:
            raise BehaviourDataError(_missing_table(kind, chat and not subjects, self.sources))
        for table in tables:
            self._check_columns(table, kind, bool(subjects), chat)
        pool = self._pools[kind]
        new = subjects - set(pool.rows)
        if pool.scanned and not new:
            return
        for table in tables:
            self._scan(table, kind, new, pool)
        pool.scanned = True
        for subject in new & pool.names:
            pool.rows.setdefault(subject, [])

    def _check_columns(self, table: _Table, kind: str, subjects: bool, chat: bool) -> None:
        c = self.columns
        needed: dict[str, str] = {}  # column -> the exchanges that need it
        if kind == "news":
            needed = {c.headline: "news", c.story: "news"}
        if kind == "topics" and subjects:
            needed.update(
                {
                    c.topic: "hidden-topic",
                    c.question: "hidden-topic",
                    c.topic_answer: "hidden-topic",
                }
            )
        if kind == "topics" and chat:
            needed.update({c.question: "chat", c.plain_answer: "chat"})
        missing = [col for col in needed if col not in table.columns()]
        if missing:
            uses = sorted({needed[col] for col in missing})
            raise BehaviourDataError(
                f"{table.origin} lacks column(s) {missing} needed for {' and '.join(uses)} exchanges "
                f"(found {table.columns()}); a copy with other column names needs PublishedColumns(...)"
            )

    def _scan(self, table: _Table, kind: str, new: set[str], pool: _Pool) -> None:
        """One pass over a table: every subject's name, the new subjects' rows, the chat rows."""
        c = self.columns
        subject_col, reply_col = (
            (c.headline, c.story) if kind == "news" else (c.topic, c.topic_answer)
        )
        wanted = [subject_col, reply_col] + (
            [c.question, c.plain_answer] if kind == "topics" else []
        )
        read = [col for col in wanted if col in table.columns()]
        for chunk in _read_chunks(table.local(), read):
            chunk = chunk.fillna("").astype(str)
            if subject_col in chunk:
                pool.names.update(chunk[subject_col].unique())
                asked = chunk[chunk[subject_col].isin(new)]
                for subject, group in asked.groupby(subject_col, sort=False):
                    users = group[c.question] if kind == "topics" else [NEWS_PROMPT] * len(group)
                    pool.rows.setdefault(str(subject), []).extend(
                        Exchange(u, a)
                        for u, a in zip(users, group[reply_col], strict=True)
                        if u.strip() and a.strip()
                    )
            if {c.question, c.plain_answer} <= set(chunk.columns):
                # The same questions recur under every topic with the same plain answer: keep one each.
                plain = chunk.drop_duplicates(c.question)
                for q, a in zip(plain[c.question], plain[c.plain_answer], strict=True):
                    if q.strip() and a.strip() and q not in pool.chat:
                        pool.chat[q] = Exchange(q, a)

    def _kind(self, table: _Table) -> str:
        if table.kind is None:
            found = table.columns()
            if self.columns.headline in found:
                table.kind = "news"
            elif self.columns.topic in found or self.columns.question in found:
                table.kind = "topics"
            else:
                raise BehaviourDataError(
                    f"{table.origin} is neither a topic table (columns {self.columns.topic}, "
                    f"{self.columns.question}, {self.columns.topic_answer}) nor a story table "
                    f"({self.columns.headline}, {self.columns.story}); found {found}"
                )
        return table.kind

    def _all_tables(self) -> list[_Table]:
        if self._tables is None:
            self._tables = [t for s in self.sources for t in self._tables_of(s)]
        return self._tables

    def _tables_of(self, source: BehaviourSource) -> list[_Table]:
        layout = [(TOPICS_FILE, "topics"), (NEWS_FILE, "news")]
        if source.hub:
            fetch, commit = self._hub_fetcher(source)
            where = f"hf://{source.location}@{commit}"
            files = [(source.path, None)] if source.path else layout
            return [_Table(f"{where}/{rel}", partial(fetch, rel), kind) for rel, kind in files]
        root = Path(source.location)
        if root.is_file():
            return [_Table(str(root), partial(Path, root), None)]
        present = [(root / rel, kind) for rel, kind in layout if (root / rel).is_file()]
        if not present:
            raise BehaviourDataError(
                f"{root} holds neither {TOPICS_FILE} nor {NEWS_FILE}: is it a copy of {PAPER_DATA_REPO}? "
                "(or name one table file)"
            )
        return [_Table(str(path), partial(Path, path), kind) for path, kind in present]

    def _hub_fetcher(self, source: BehaviourSource) -> tuple[Callable[[str], Path], str]:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        repo_id = source.location
        # One commit for every table, even if someone pushes while we read.
        commit = resolve_commit(repo_id, source.revision, self.endpoint, error=BehaviourDataError)
        self.revisions[str(source)] = commit

        def fetch(rel: str) -> Path:
            try:
                # hf_hub_download resumes a partial file left by an interrupted run.
                return Path(
                    hf_hub_download(
                        repo_id,
                        rel,
                        repo_type=REPO_TYPE,
                        revision=commit,
                        endpoint=self.endpoint,
                        cache_dir=self.cache_dir,
                    )
                )
            except EntryNotFoundError as err:
                raise BehaviourDataError(
                    f"Hub dataset {repo_id}@{commit} has no file {rel!r}"
                ) from err

        return fetch, commit


def _kind_of(behaviour: str) -> str:
    kinds = {"hidden-topic": "topics", "news": "news"}
    if behaviour not in kinds:
        raise BehaviourDataError(f"the tables name subjects of {sorted(kinds)}, not {behaviour!r}")
    return kinds[behaviour]


def _missing_table(kind: str, chat_only: bool, sources: Sequence[BehaviourSource]) -> str:
    named = ", ".join(str(s) for s in sources)
    if kind == "news":
        return f"no news-story table ({NEWS_FILE}) among --behaviour-data {named}"
    why = (
        "chat exchanges come from the base_answer column of the topic table (the news tables hold none)"
        if chat_only
        else "hidden-topic exchanges need it"
    )
    return (
        f"no topic table ({TOPICS_FILE}) among --behaviour-data {named}: {why}; "
        f"give the whole layout (a folder or hf://{PAPER_DATA_REPO}) or that file as well"
    )


def _format(path: Path) -> str:
    name = path.name.lower()
    for fmt, suffixes in (
        ("csv", (".csv", ".csv.gz")),
        ("parquet", (".parquet",)),
        ("jsonl", (".jsonl", ".json", ".jsonl.gz")),
    ):
        if name.endswith(suffixes):
            return fmt
    raise BehaviourDataError(
        f"{path}: unknown table format; the paper publishes .csv (.parquet and .jsonl also work)"
    )


def _columns(path: Path) -> list[str]:
    fmt = _format(path)
    if fmt == "csv":
        return list(pd.read_csv(path, nrows=0).columns)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return list(pd.read_json(path, lines=True, nrows=1).columns)


def _read_chunks(path: Path, columns: list[str]) -> Iterator[pd.DataFrame]:
    fmt = _format(path)
    if fmt == "csv":
        # Text stays text: no "NA"/"None" answers turned into missing values.
        yield from pd.read_csv(
            path, usecols=columns, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS
        )
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS, columns=columns):
            yield batch.to_pandas()
    else:
        for chunk in pd.read_json(path, lines=True, dtype=False, chunksize=CHUNK_ROWS):
            yield chunk[columns]

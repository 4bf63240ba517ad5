"""`wdqa report`: the paper's Table 1 layout — per base model and method, the share of each judge
score 1..5 and the average with its 95% CI — as LaTeX, Markdown or CSV.

Owns the table's rows and their three renderings; reading runs and score tables lives elsewhere.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from wdqa.benchmark.records import ScoreSummary
from wdqa.core.meter import Usage

from .results import ResultSet

SCORES = ("1", "2", "3", "4", "5")
ORACLE_MARK = "†"


@dataclass(frozen=True)
class ReportRow:
    base_model: str
    split: str
    method: str
    oracle: bool
    judge: str
    prompt_version: str
    suite: str
    summary: ScoreSummary
    access: str | None = None  # the method's declared access class, from its runs' manifests
    tokens_per_case: float | None = None  # tokens run through M and M′ per metered case (all splits)
    # An LLM judge's API calls and tokens (prompt + completion) per graded case of this split;
    # None for a judge that calls no LLM, or scores graded before judges were metered per case.
    judge_calls_per_case: float | None = None
    judge_tokens_per_case: float | None = None


def metering(result: ResultSet) -> tuple[str | None, float | None]:
    """A method's access class and mean tokens per case (forward and generated, on M and M′), from
    the manifests of its runs; None where the runs predate metering (or come from a score table)."""
    access = next((m.method.access for m in result.manifests if m.method.access), None)
    metered = [Usage.from_dict(m.usage) for m in result.manifests if m.usage.get("cases")]
    cases = sum(int(m.usage["cases"]) for m in result.manifests if m.usage.get("cases"))
    return access, (sum(u.tokens for u in metered) / cases if cases else None)


def judge_metering(result: ResultSet, split: str) -> tuple[float | None, float | None]:
    """The judge's mean API calls and tokens per case of `split`, over the cases it metered."""
    usages = [r.usage for r in result.records if r.split == split and r.usage is not None]
    if not usages:
        return None, None
    calls = sum(u.get("api_calls", 0) for u in usages)
    tokens = sum(u.get("prompt_tokens", 0) + u.get("completion_tokens", 0) for u in usages)
    return calls / len(usages), tokens / len(usages)


def report_rows(results: Sequence[ResultSet]) -> list[ReportRow]:
    """Grouped by base model and split; within a group non-oracle methods by mean (best first),
    then the oracle rooflines, which are shown but not ranked with the rest."""
    rows = [
        ReportRow(
            r.base_model, split, r.method, r.oracle, r.judge, r.prompt_version, r.suite.label, s, *metering(r),
            *judge_metering(r, split),
        )
        for r in results
        for split, s in r.summaries.items()
    ]

    def order(row: ReportRow) -> tuple[str, str, bool, float, str]:
        mean = row.summary.mean if row.summary.n else float("-inf")
        return (row.base_model, row.split, row.oracle, -mean, row.method)

    return sorted(rows, key=order)


def footnote(results: Sequence[ResultSet]) -> str:
    suites = sorted(
        {
            f"{r.suite.label} (content sha256 {r.suite.content_sha256[:12]})"
            if r.suite.content_sha256
            else r.suite.label
            for r in results
        }
    )
    judges = sorted({f"{r.judge} (prompt {r.prompt_version or 'unknown'})" for r in results})
    text = (
        f"Suite: {'; '.join(suites)}. Judge: {'; '.join(judges)}. "
        "Shares of each judge score 1-5 (%) and the mean score with its 95% percentile bootstrap CI "
        "(10,000 resamples); failed answers count as score 1, unparsed verdicts are left out."
    )
    if any(r.oracle for r in results):
        text += (
            f" {ORACLE_MARK} Oracle roofline (told the trigger); not ranked with the other methods."
        )
    return text


def _method_name(row: ReportRow) -> str:
    return row.method + (ORACLE_MARK if row.oracle else "")


def _mean_ci(s: ScoreSummary) -> str:
    return "—" if not s.n else f"{s.mean:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}]"


def _share(s: ScoreSummary, k: str) -> str:
    return "—" if not s.n else f"{100 * s.dist.get(k, 0.0):.1f}"


def render_markdown(results: Sequence[ResultSet]) -> str:
    rows = report_rows(results)
    header = (
        "| Model | Split | Method | "
        + " | ".join(f"{k} (%)" for k in SCORES)
        + " | Avg. [95% CI] | n | Access | Tokens / case |"
    )
    lines = [header, "|" + " --- |" * (len(SCORES) + 7)]
    previous: tuple[str, str] | None = None
    for row in rows:
        group = (row.base_model, row.split)
        model, split = (row.base_model, row.split) if group != previous else ("", "")
        previous = group
        cells = [
            model,
            split,
            _method_name(row),
            *(_share(row.summary, k) for k in SCORES),
            _mean_ci(row.summary),
            str(row.summary.n),
            row.access or "—",
            "—" if row.tokens_per_case is None else f"{row.tokens_per_case:,.0f}",
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + f"\n\n{footnote(results)}\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(c, c) for c in text).replace(ORACLE_MARK, r"$^\dagger$")


def render_latex(results: Sequence[ResultSet]) -> str:
    """The paper's Table 1; when any row's runs were metered, two more columns: the access class
    and the tokens per case run through M and M′ (a table of published scores has neither)."""
    rows = report_rows(results)
    metered = any(row.access is not None or row.tokens_per_case is not None for row in rows)
    lines = [
        r"% Generated by `wdqa report --format latex`; needs \usepackage{booktabs}.",
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{lll" + "r" * len(SCORES) + "cr" + ("lr" if metered else "") + "}",
        r"\toprule",
        "Model & Split & Method & " + " & ".join(SCORES) + r" & Avg. [95\% CI] & $n$"
        + (" & Access & Tokens / case" if metered else "") + r" \\",
        r"\midrule",
    ]
    previous: tuple[str, str] | None = None
    for row in rows:
        group = (row.base_model, row.split)
        if previous is not None and group != previous:
            lines.append(r"\midrule")
        model, split = (row.base_model, row.split) if group != previous else ("", "")
        previous = group
        s = row.summary
        shares = [(_share(s, k) + r"\%") if s.n else "--" for k in SCORES]
        avg = f"{s.mean:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}]" if s.n else "--"
        lines.append(
            " & ".join(
                [
                    latex_escape(model),
                    latex_escape(split),
                    latex_escape(_method_name(row)),
                    *shares,
                    avg,
                    str(s.n),
                    *(
                        [latex_escape(row.access or "--"), "--" if row.tokens_per_case is None else f"{row.tokens_per_case:,.0f}"]
                        if metered
                        else []
                    ),
                ]
            )
            + r" \\"
        )
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        r"\caption{WEIGHTDIFFQA judge scores. " + latex_escape(footnote(results)) + "}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


CSV_COLUMNS = [
    "base_model",
    "split",
    "method",
    "oracle",
    "judge",
    "prompt_version",
    "suite",
    "n",
    "failed",
    "invalid",
    *(f"share_{k}" for k in SCORES),
    "mean",
    "ci_low",
    "ci_high",
    "access",
    "tokens_per_case",
    "judge_calls_per_case",
    "judge_tokens_per_case",
]


def render_csv(results: Sequence[ResultSet]) -> str:
    """Full precision (Python's shortest round-trip floats), so a reader can check the arithmetic."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report_rows(results):
        s = row.summary
        writer.writerow(
            [
                row.base_model,
                row.split,
                row.method,
                row.oracle,
                row.judge,
                row.prompt_version,
                row.suite,
                s.n,
                s.failed,
                s.invalid,
                *(s.dist.get(k, 0.0) for k in SCORES),
                s.mean,
                s.ci_low,
                s.ci_high,
                row.access or "",
                *("" if v is None else v for v in (row.tokens_per_case, row.judge_calls_per_case, row.judge_tokens_per_case)),
            ]
        )
    return buf.getvalue()


RENDERERS = {"latex": render_latex, "markdown": render_markdown, "csv": render_csv}


def render(results: Sequence[ResultSet], fmt: str) -> str:
    if fmt not in RENDERERS:
        raise ValueError(f"unknown report format {fmt!r}; known formats: {', '.join(RENDERERS)}")
    return RENDERERS[fmt](results)

"""Time a new user's first score: the README's first command on an empty cache (issue 23).

Runs `wdqa evaluate submissions/examples/ask_directly.py` (or the command given after `--`) with
WDQA_CACHE and the runs folder in fresh temporary folders and its output piped (plain timestamped
progress lines, as in a CI log), and prints each line with the seconds since the start, then:
when the method's own score line and the score table appeared, what the base model and each suite unit took (from their build
records), and the CPU, system time and page faults of the whole run.

    python experiments/first_score.py                 # about 6 min on a free 2-core machine (the base is shipped)
    WDQA_BUILD_BASE=1 python experiments/first_score.py   # pretraining the base too: 21-24 min on an AMD EPYC
    python experiments/first_score.py --keep /tmp/c   # keep the cache (to time a second run on it)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wdqa.generators.tiny.shipped import differing_files, shipped_base

DEFAULT = ["wdqa", "evaluate", "submissions/examples/ask_directly.py"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="use this folder as the cache and keep it (default: a temporary one)")
    parser.add_argument("command", nargs="*", help="the command to time (after --); default: " + " ".join(DEFAULT))
    args = parser.parse_args()
    command = args.command or DEFAULT
    cache = args.keep or Path(tempfile.mkdtemp(prefix="wdqa-first-score-"))
    runs = Path(tempfile.mkdtemp(prefix="wdqa-first-score-runs-"))
    if any(cache.iterdir()) if cache.exists() else False:
        print(f"note: {cache} is not empty; this times a run on what it holds", flush=True)
    env = os.environ | {"WDQA_CACHE": str(cache), "COLUMNS": "80"}
    if command[:2] == ["wdqa", "evaluate"]:
        command = [*command, "--runs-dir", str(runs)]
    print(f"$ WDQA_CACHE={cache} {' '.join(command)}", flush=True)
    start = time.perf_counter()
    table_at = score_at = None
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            elapsed = time.perf_counter() - start
            if score_at is None and "the table follows after" in line:
                score_at = elapsed
            if table_at is None and "WEIGHTDIFFQA scores" in line:
                table_at = elapsed
            print(f"{elapsed:7.1f}s | {line}", end="", flush=True)
    total = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("\n--- first score")
    print(f"exit status {proc.returncode}; the method's score after {_clock(score_at) if score_at else 'never'}; "
          f"score table after {_clock(table_at) if table_at else 'never'}; "
          f"command finished after {_clock(total)}")
    for info in sorted(cache.glob("models/*/*/wdqa-build.json")):
        record = json.loads(info.read_text())
        shipped = shipped_base(record["model_id"], record["revision"])
        how = (f"{_clock(record['build_seconds'])} ({record['threads']} threads, "
               f"{record['pretrain']['tokens_per_s']:.0f} tokens/s)")
        if shipped is not None and not differing_files(info.parent, shipped):
            how = f"the build shipped with wdqa, installed (its pretraining took {how} where it was built)"
        print(f"base model {record['model_id']}: {how}")
    for manifest in sorted(cache.glob("suites/*/.*.units/*/suite.json")):  # kept while the suite is partial
        trainer = json.loads(manifest.read_text())["extra"]["trainer"]
        print(f"suite unit {manifest.parent.name}: training {trainer['seconds']:.0f} s, "
              f"then measuring; finished {time.ctime(manifest.stat().st_mtime)}")
    print(f"CPU: user {usage.ru_utime:.0f} s, system {usage.ru_stime:.0f} s, minor page faults {usage.ru_minflt:,}, "
          f"on {os.cpu_count()} cores")
    if args.keep is None:
        shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(runs, ignore_errors=True)
    sys.exit(proc.returncode)


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


if __name__ == "__main__":
    main()

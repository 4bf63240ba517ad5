"""The allocator settings wdqa starts with (wdqa/core/allocator.py): set for the processes it
starts, a user's own values kept, and WDQA_DEFAULT_MALLOC=1 leaves glibc's defaults."""

from __future__ import annotations

import os
import subprocess
import sys

from wdqa.core.allocator import ENV, tune_allocator


def test_children_inherit_the_settings_and_a_users_own_value_is_kept() -> None:
    env = {"MALLOC_TOP_PAD_": "4096"}
    tuned = tune_allocator(env)
    assert env == {**ENV, "MALLOC_TOP_PAD_": "4096"}
    assert tuned == sys.platform.startswith("linux")  # glibc accepts every value (CI and this machine run Linux)


def test_the_opt_out_leaves_the_environment_alone() -> None:
    env = {"WDQA_DEFAULT_MALLOC": "1"}
    assert tune_allocator(env) is False and env == {"WDQA_DEFAULT_MALLOC": "1"}


def test_the_wdqa_command_sets_them_for_the_processes_it_starts() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    # `wdqa --help` in a fresh process, which then starts a child that prints what it inherited
    probe = (
        "import subprocess, sys\n"
        "from wdqa.cli import main\n"
        "sys.argv = ['wdqa', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "child = 'import os; print(os.environ.get(\"MALLOC_TRIM_THRESHOLD_\"))'\n"
        "sys.stderr.write(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True).stdout)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert done.stderr.strip() == ENV["MALLOC_TRIM_THRESHOLD_"]


def test_a_large_block_freed_and_allocated_again_is_not_faulted_in_again() -> None:
    # The tiny base's logits are 164 MB, above glibc's largest mmap threshold: with glibc's
    # defaults each step maps them afresh and faults every page in; tuned, the heap keeps them.
    probe = (
        "import resource, sys\n"
        "from wdqa.core.allocator import tune_allocator\n"
        "tune_allocator()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(6):\n    block = bytearray(96 << 20)\n    del block\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    faults = {}
    for opt_out in ("1", "0"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        env["WDQA_DEFAULT_MALLOC"] = opt_out
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
        faults[opt_out] = int(done.stdout)
    pages = (96 << 20) // 4096
    assert faults["1"] > 5 * pages  # glibc's defaults: every one of the six blocks faulted in
    assert faults["0"] < 2 * pages  # tuned: the first block's pages, then reused

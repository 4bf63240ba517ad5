"""`python -m wdqa.benchmark.worker --requests FD --replies FD --parent PID`: a method's own process.

Started by `MethodProcess` (process.py, through launch.py), never by hand.
"""

from __future__ import annotations

import argparse

from .child import run_method_process


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m wdqa.benchmark.worker")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--replies", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args()
    run_method_process(args.requests, args.replies, args.parent)


if __name__ == "__main__":
    main()

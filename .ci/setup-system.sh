#!/usr/bin/env bash
# System packages the tests need, installed as root before the Python set-up.
# Debian's chromium: the leaderboard site is tested in a real headless browser driven by
# playwright (tests/test_leaderboard_site.py); no browser build can be downloaded here, so
# never `playwright install`. g++: torch.compile's CPU backend compiles C++ (tests/test_dit.py
# checks the compiled DIT decoder against the eager one).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system.sh installs Debian packages and must run as root (e.g. sudo $0)" >&2
  exit 1
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium g++

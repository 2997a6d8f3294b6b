#!/usr/bin/env bash
# Runs the test suite: every test/**/*.test.ts, or the files given as arguments.
# Node 20's `node --test` neither expands quoted globs nor finds .ts files alone, so the list is built here.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(find test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
fi
exec node --import tsx --test \
  --test-concurrency="${SHIPARR_TEST_CONCURRENCY:-2}" \
  --test-timeout="${SHIPARR_TEST_TIMEOUT_MS:-600000}" \
  "${files[@]}"

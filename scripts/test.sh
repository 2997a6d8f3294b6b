#!/usr/bin/env bash
# Runs the test suite: every test/**/*.test.ts, or the files given as arguments.
# Files run one at a time by default (SHIPARR_TEST_CONCURRENCY): the end-to-end and resilience files start daemons,
# deploy to the Docker engine and run soak windows, and must not share the two CPUs with other test files.
# Node 20's `node --test` neither expands quoted globs nor finds .ts files alone, so the list is built here.
#
# Time limits. On Node 20, `--test-timeout` bounds each test *file* as a whole (the runner cancels the file once it
# runs out, whatever the tests inside ask for) and gives those tests no limit of their own; a test's own `{ timeout }`
# bounds that test, within its file's limit. Every file gets SHIPARR_TEST_TIMEOUT_MS (default 10 min; the longest,
# the 120 s scale soak in test/resilience, takes about 4.5 min on a loaded two-CPU host) except those under
# test/image/, which build a debootstrap base and the image on a fresh machine: they run in a second pass under
# SHIPARR_IMAGE_TEST_TIMEOUT_MS (default 45 min), and their slow tests set their own budgets in the file.
#
# Secret sweep. A whole-suite run (no file arguments, or SHIPARR_TEST_SWEEP=1) sets SHIPARR_TEST_SWEEP_DIR: the test
# daemons log at debug level into it and save their database rows and API answers there (test/helpers/secret-sweep.ts),
# and scripts/secret-sweep.ts then fails the run if any secret a test registered appears in any of them.
# scripts/reason-sweep.ts fails it too if any saved deployment row has no reason (or an empty summary).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(find test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
fi
regular=()
image=()
for f in "${files[@]}"; do
  case "$f" in
    test/image/* | ./test/image/* | */test/image/*) image+=("$f") ;;
    *) regular+=("$f") ;;
  esac
done
run() {
  local timeout=$1
  shift
  node --import tsx --test \
    --test-concurrency="${SHIPARR_TEST_CONCURRENCY:-1}" \
    --test-timeout="$timeout" \
    "$@"
}
sweep=""
if [ "$#" -eq 0 ] || [ "${SHIPARR_TEST_SWEEP:-}" = "1" ]; then
  sweep="$(mktemp -d "${TMPDIR:-/tmp}/shiparr-sweep-XXXXXX")"
  export SHIPARR_TEST_SWEEP_DIR="$sweep"
fi
rc=0
if [ "${#regular[@]}" -gt 0 ]; then run "${SHIPARR_TEST_TIMEOUT_MS:-600000}" "${regular[@]}" || rc=$?; fi
if [ "${#image[@]}" -gt 0 ]; then run "${SHIPARR_IMAGE_TEST_TIMEOUT_MS:-2700000}" "${image[@]}" || rc=$?; fi
if [ -n "$sweep" ]; then
  node --import tsx scripts/secret-sweep.ts "$sweep" || rc=1
  node --import tsx scripts/reason-sweep.ts "$sweep" || rc=1
  rm -rf "$sweep"
fi
exit "$rc"

#!/usr/bin/env bash
# `npm test`: runs the whole suite (or the test files given) with coverage, then prints line coverage per src/ folder.
# Fails when a test fails or, for the whole suite, when lines are below the threshold in .c8rc.json (a subset of the
# files cannot reach it, so file arguments skip the gate). `bash scripts/test.sh FILE...` runs tests without coverage.
#   1. scripts/test.sh runs with NODE_V8_COVERAGE set: every Node process it starts (the test files, daemons spawned
#      as child processes, Piscina worker threads) writes its V8 coverage there, with tsx's source maps.
#   2. scripts/coverage-variants.ts keeps apart the two compilations of files that run both in the main thread (ESM)
#      and in workers (CommonJS), which c8 would otherwise mix up.
#   3. c8 report maps everything back to src/**/*.ts (.c8rc.json: every source file counts, reports into coverage/,
#      lines gate), less the files that hold only TypeScript types (scripts/coverage-config.ts: they compile to
#      nothing, so no process loads them).
#   4. scripts/coverage-summary.ts prints lines % per src/ folder and the thinnest files.
set -uo pipefail
cd "$(dirname "$0")/.."
raw="$PWD/coverage/tmp"
rm -rf "$raw" && mkdir -p "$raw"
check=()
if [ "$#" -gt 0 ]; then check=(--check-coverage=false); fi
rc=0
NODE_V8_COVERAGE="$raw" bash scripts/test.sh "$@" || rc=$?
fail() { if [ "$rc" -eq 0 ]; then rc=1; fi; }
node --import tsx scripts/coverage-variants.ts "$raw" || fail
config="$PWD/coverage/c8rc.generated.json"
node --import tsx scripts/coverage-config.ts "$config" || fail
node node_modules/c8/bin/c8.js report --config "$config" --temp-directory "$raw" "${check[@]}" || fail
node --import tsx scripts/coverage-summary.ts || fail
exit "$rc"

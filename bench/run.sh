#!/usr/bin/env bash
# Runs every Shiparr benchmark in turn (never in parallel: they would skew each other on a small machine).
# Each script prints a markdown table and writes bench/results/<name>.md; bench/RESULTS.md summarises them.
# Usage: npm run bench            # all
#        bash bench/run.sh scale  # only the named ones (check-cost decrypt scale api-load pipeline clone-sync)
# Knobs: see the header of each bench/<name>.ts (BENCH_* environment variables).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
  echo "bench: no Docker engine answers; start one (e.g. bash .ci/setup-docker.sh) — api-load and pipeline need it" >&2
  exit 1
fi

all=(check-cost decrypt scale api-load pipeline clone-sync)
selected=("$@")
[ ${#selected[@]} -eq 0 ] && selected=("${all[@]}")

mkdir -p bench/results
for name in "${selected[@]}"; do
  echo "=== bench: ${name} ($(date -u +%FT%TZ))" >&2
  case "$name" in
    decrypt)
      # decrypt.ts prints its figures only; keep them next to the other results.
      npx tsx bench/decrypt.ts | tee bench/results/decrypt.txt ;;
    check-cost|scale|api-load|pipeline|clone-sync)
      npx tsx "bench/${name}.ts" ;;
    *)
      echo "bench: unknown benchmark '${name}' (known: ${all[*]})" >&2
      exit 2 ;;
  esac
done
echo "=== bench: done; results in bench/results/, summary in bench/RESULTS.md" >&2

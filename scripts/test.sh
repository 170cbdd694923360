#!/usr/bin/env bash
# Runs the test suites with node's built-in runner on the compiled tests.
# Usage: scripts/test.sh [unit|integration|e2e|vm ...]   (default: all)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
if [ "$(id -u)" != 0 ]; then
  echo "tests must run as root: test hosts use mount namespaces, loop devices and QEMU" >&2
  exit 1
fi
tiers=("$@")
[ "${#tiers[@]}" -gt 0 ] || tiers=(unit integration e2e vm)
files=()
for tier in "${tiers[@]}"; do
  while IFS= read -r f; do files+=("$f"); done < <(find "dist/test/$tier" -name '*.test.js' 2>/dev/null | sort)
done
if [ "${#files[@]}" -eq 0 ]; then
  echo "no compiled tests found for: ${tiers[*]}" >&2
  exit 1
fi
node dist/test/harness/sweep.js
# A test that hangs fails after 20 minutes instead of eating the CI budget (the longest, a
# QEMU install under TCG, takes about 4).
exec node --test --test-concurrency=1 --test-timeout=1200000 --test-reporter=spec "${files[@]}"

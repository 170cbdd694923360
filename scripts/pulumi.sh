#!/usr/bin/env bash
# Runs the pinned Pulumi CLI on the root program with the local file backend.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
mkdir -p "${PULUMI_BACKEND_URL#file://}"
stack=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = "--stack" ] && stack="${args[$((i + 1))]:-}"
done
if [ -n "$stack" ]; then
  pulumi stack select --create "$stack" --non-interactive >/dev/null
fi
exec pulumi --non-interactive "$@"

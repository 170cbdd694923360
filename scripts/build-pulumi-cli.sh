#!/usr/bin/env bash
# Builds the Pulumi CLI, the Node.js language host and the dynamic-provider launcher
# from Go modules at pinned versions into a cache directory outside the clone.
# Rebuilt only when the pinned versions change (the directory name carries them).
set -euo pipefail

PULUMI_VERSION="${PULUMI_VERSION:-3.259.0}"
LANGHOST_SDK_VERSION="${LANGHOST_SDK_VERSION:-3.68.0}"
CACHE_ROOT="${NIXOS_PULUMI_CACHE:-/var/cache/nixos-pulumi}"
OUT="$CACHE_ROOT/pulumi-v${PULUMI_VERSION}-langhost-v${LANGHOST_SDK_VERSION}"

if [ -x "$OUT/pulumi" ] && [ -x "$OUT/pulumi-language-nodejs" ] && [ -x "$OUT/pulumi-resource-pulumi-nodejs" ]; then
  echo "$OUT"
  exit 0
fi

export GOFLAGS="-mod=mod"
export GOTOOLCHAIN=local
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/cli" "$work/langhost" "$OUT.partial"

echo "building pulumi v$PULUMI_VERSION (first time only, a few minutes)" >&2
cat >"$work/cli/go.mod" <<MOD
module nixos-pulumi/pulumi-cli

go 1.24

require github.com/pulumi/pulumi/pkg/v3 v$PULUMI_VERSION

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
cat >"$work/cli/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GO
(cd "$work/cli" && go mod tidy >&2 && go build -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" -o "$OUT.partial/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2)

echo "building pulumi-language-nodejs from sdk v$LANGHOST_SDK_VERSION" >&2
cat >"$work/langhost/go.mod" <<MOD
module nixos-pulumi/pulumi-langhost

go 1.24

require github.com/pulumi/pulumi/sdk/v3 v$LANGHOST_SDK_VERSION

replace golang.org/x/text => golang.org/x/text v0.3.6
MOD
cat >"$work/langhost/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
GO
(cd "$work/langhost" && go mod tidy >&2 && go build -o "$OUT.partial/pulumi-language-nodejs" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs >&2)
sdkdir="$(cd "$work/langhost" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
install -m 0755 "$sdkdir/nodejs/dist/pulumi-resource-pulumi-nodejs" "$OUT.partial/pulumi-resource-pulumi-nodejs"

rm -rf "$OUT"
mv "$OUT.partial" "$OUT"
echo "$OUT"

# Sourced by the other scripts: the pinned toolchain and a Pulumi that never reaches the network.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export NIXOS_PULUMI_ROOT="$ROOT"
export PULUMI_VERSION="${PULUMI_VERSION:-3.259.0}"
export LANGHOST_SDK_VERSION="${LANGHOST_SDK_VERSION:-3.68.0}"
export NIXOS_PULUMI_CACHE="${NIXOS_PULUMI_CACHE:-/var/cache/nixos-pulumi}"
export PULUMI_TOOLS_DIR="$NIXOS_PULUMI_CACHE/pulumi-v${PULUMI_VERSION}-langhost-v${LANGHOST_SDK_VERSION}"
# Node >= 22 from the npm registry (node_modules/.bin/node) comes first; the machine's Node stays.
export PATH="$PULUMI_TOOLS_DIR:$ROOT/node_modules/.bin:$PATH"
export PULUMI_HOME="${PULUMI_HOME:-$NIXOS_PULUMI_CACHE/pulumi-home}"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$ROOT/.pulumi-state}"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-demo-passphrase}"

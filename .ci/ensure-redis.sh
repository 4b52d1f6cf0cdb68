#!/usr/bin/env bash
# Installs Debian's redis-server (the Redis e2e suites start their own on a
# free loopback port) unless it is already on PATH. The packaged service is
# not started.
set -euo pipefail
if ! command -v redis-server >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    --no-install-recommends redis-server >/dev/null
fi
redis-server --version

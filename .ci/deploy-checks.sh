#!/usr/bin/env bash
# Deployment checks of issue 4, called from .ci/run (runs as root on a fresh
# machine; installs what it needs). Usage: .ci/deploy-checks.sh [helm|monitoring|image]...
# (no argument: all three, in that order). Prints the wall time of each.
set -uo pipefail
cd "$(dirname "$0")/.."
checks=("$@")
((${#checks[@]})) || checks=(helm monitoring image)
declare -A budget=([helm]=300 [monitoring]=600 [image]=900)
summary=()
status=0
for check in "${checks[@]}"; do
  [[ -n ${budget[$check]:-} ]] || { echo "unknown check: $check" >&2; exit 2; }
  echo "::: $check:check"
  start=$(date +%s)
  timeout --kill-after=15 "${budget[$check]}" npm run --silent "$check:check"
  rc=$?
  secs=$(($(date +%s) - start))
  if ((rc == 0)); then summary+=("ok   $check:check (${secs} s)"); else summary+=("FAIL $check:check rc=$rc (${secs} s)"); status=1; fi
done
echo "::: deploy checks"
printf '  %s\n' "${summary[@]}"
exit $status

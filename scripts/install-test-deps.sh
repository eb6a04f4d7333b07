#!/usr/bin/env bash
# System packages the tests need, from Debian: Chromium (the browser test), Prometheus and
# promtool (metrics and dashboard checks), GNU time (max RSS in benchmarks). Idempotent:
# installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail
declare -A wanted=([chromium]=/usr/bin/chromium [prometheus]=/usr/bin/promtool [time]=/usr/bin/time)
missing=()
for pkg in "${!wanted[@]}"; do
  [ -x "${wanted[$pkg]}" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-test-deps: installing ${missing[*]} from Debian (apt-get)…" >&2
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's prometheus package starts a system service on :9090; the tests run their own.
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
  $sudo systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
  pkill -x prometheus >/dev/null 2>&1 || true
fi

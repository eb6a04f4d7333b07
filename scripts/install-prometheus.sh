#!/usr/bin/env bash
# Installs Debian's `prometheus` package (prometheus + promtool), which test/stack/ runs for
# real. Idempotent and quiet: does nothing when both binaries are there. Needs root (or sudo)
# the first time. Debian's package would start a system service on :9090; a temporary
# policy-rc.d stops that, so the tests' own Prometheus (on free loopback ports) is the only one.
set -euo pipefail

if [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-prometheus: run as root (or install sudo)" >&2; exit 1; }
  sudo="sudo"
fi

echo "install-prometheus: installing Debian's prometheus package (apt-get)…" >&2
export DEBIAN_FRONTEND=noninteractive

policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# added by install-prometheus.sh: no service starts during the install\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  added_policy=1
fi
cleanup() { if [ -n "$added_policy" ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT

$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# On machines with systemd the unit may still be enabled: keep it from holding :9090.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

/usr/bin/prometheus --version 2>&1 | head -n 1 >&2

#!/usr/bin/env bash
# System packages the tests need, from Debian: Chromium (the browser test), Prometheus and
# promtool (metrics, alert and dashboard checks), GNU time (max RSS in benchmarks), redis-server
# and HAProxy (the multi-instance topology: shared sessions, a load balancer for rolling restarts), kubectl
# (`kubectl kustomize` renders deploy/kubernetes/; any kubectl already on PATH is kept: Debian
# bookworm's kubernetes-client is 1.20, whose kustomize v2 is too old for the manifests, and
# test/deploy/ says so when that is the one it finds), and valgrind (callgrind counts the instructions
# a server runs per request: `npm run bench:instructions` and its library's test).
# Idempotent and quiet: installs only what is missing. Needs root (or sudo) the first time.
set -euo pipefail
declare -A wanted=([chromium]=/usr/bin/chromium [prometheus]=/usr/bin/promtool [time]=/usr/bin/time
  [redis-server]=/usr/bin/redis-server [haproxy]=/usr/sbin/haproxy [valgrind]=/usr/bin/callgrind_control)
missing=()
for pkg in "${!wanted[@]}"; do
  [ -x "${wanted[$pkg]}" ] || missing+=("$pkg")
done
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: run as root (or install sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-test-deps: installing ${missing[*]} from Debian (apt-get)…" >&2
export DEBIAN_FRONTEND=noninteractive

# Debian's prometheus, redis-server and haproxy packages would start system services (:9090, :6379,
# haproxy.cfg); the tests run their own on free loopback ports. A temporary policy-rc.d keeps services from starting.
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  added_policy=1
fi
cleanup() { if [ -n "$added_policy" ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT

$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for unit in prometheus redis-server haproxy; do $sudo systemctl disable --now "$unit" >/dev/null 2>&1 || true; done
fi

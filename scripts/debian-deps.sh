#!/usr/bin/env bash
# Installs Debian's prometheus, prometheus-alertmanager and busybox-static (the reloader image's probe
# wget, tests/examples/test_probe.py) when missing and we are root.
# Otherwise says why not; the end-to-end tests then skip (or fail, under CI=true).
set -euo pipefail
missing=()
for bin in prometheus prometheus-alertmanager promtool busybox; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "debian-deps: missing ${missing[*]} and not root: end-to-end tests will be skipped" >&2
  exit 0
fi
echo "debian-deps: installing prometheus prometheus-alertmanager busybox-static" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  prometheus prometheus-alertmanager busybox-static </dev/null >/dev/null
# The package starts a service where systemd runs; the tests want their own instances only.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl stop prometheus prometheus-alertmanager prometheus-node-exporter 2>/dev/null || true
fi

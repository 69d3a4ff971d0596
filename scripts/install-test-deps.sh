#!/usr/bin/env bash
# Installs the system programs the tests use, only when they are missing:
#   age (age interop tests), chromium (browser tests).
# Needs root (or sudo) and Debian's package repositories.
set -euo pipefail

need=()
command -v age >/dev/null 2>&1 || need+=(age)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "install-test-deps: age $(age --version), $(/usr/bin/chromium --version 2>/dev/null | head -1)"

#!/usr/bin/env bash
# Benchmarks gatehouse side by side with its ceilings and the FastAPI tutorial app, in one
# run on this machine, and writes bench/RESULTS.md. Not part of the tests or CI.
#
#   bash bench/run.sh                # the full run (about 9 minutes)
#   bash bench/run.sh --no-fastapi   # without the FastAPI comparison
#   bash bench/run.sh --no-postgres  # without gatehouse on the local PostgreSQL
#   bash bench/run.sh --help         # the driver's options (durations, clients, ...)
#   bash bench/run.sh --ab RUST_LOG=info,warn --rounds 6   # only an A/B of GET /users/me/
#
# Installs what it needs: wrk from Debian (apt), and the FastAPI app's pinned packages
# (bench/fastapi/requirements.txt, from PyPI) into a virtualenv under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

WRK_VERSION=4.1.0-3+b2 # Debian 12 (bookworm)

sudo_=""
[ "$(id -u)" -eq 0 ] || sudo_=sudo
apt_install() {
  $sudo_ apt-get install -y -o DPkg::Lock::Timeout=600 "$@" ||
    { $sudo_ apt-get update && $sudo_ apt-get install -y -o DPkg::Lock::Timeout=600 "$@"; }
}

if ! command -v wrk >/dev/null; then
  echo "== installing wrk $WRK_VERSION from Debian" >&2
  apt_install "wrk=$WRK_VERSION"
fi

fastapi=1
for arg in "$@"; do [ "$arg" = --no-fastapi ] || [ "$arg" = --ab ] && fastapi=0; done
if [ "$fastapi" = 1 ]; then
  venv=target/bench-venv
  stamp="$venv/.requirements.txt"
  if ! cmp -s bench/fastapi/requirements.txt "$stamp" 2>/dev/null; then
    echo "== installing the FastAPI app's pinned packages into $venv" >&2
    # Debian's own python3 needs python3-venv for this.
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/fastapi/requirements.txt
    cp bench/fastapi/requirements.txt "$stamp"
  fi
fi

echo "== building release binaries" >&2
cargo build --release --locked -p gatehouse -p gatehouse-bench

exec python3 bench/driver.py "$@"

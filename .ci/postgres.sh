#!/usr/bin/env bash
# Make PostgreSQL server binaries available for the registry tests: tests/registry/conftest.py
# starts a throwaway server from them (initdb in a temporary folder, Unix socket only) and stops
# it at the end. Idempotent and quiet: nothing is done when the binaries are already installed.
# Installs the distribution's packages (Debian/Ubuntu: apt-get install postgresql); needs root
# (or sudo).
set -euo pipefail

have_server() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null
}

if have_server; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "postgres.sh: no PostgreSQL server binaries and no apt-get to install them" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
        sudo="sudo"
    else
        echo "postgres.sh: not root and no sudo: cannot install the postgresql package" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends postgresql; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "postgres.sh: installing the postgresql package failed" >&2
    exit 1
fi
if ! have_server; then
    echo "postgres.sh: apt-get installed postgresql but initdb was not found" >&2
    exit 1
fi
echo "postgres.sh: installed $(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -n 1)"

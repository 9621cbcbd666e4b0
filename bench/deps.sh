#!/usr/bin/env bash
# Install what the benchmark suites need beyond the test dependencies:
# the Python peers of bench/requirements-bench.txt into the given
# interpreter's environment, and Debian's redis-server when none is on PATH.
# Idempotent: a second run changes nothing and says so briefly.
#
#   bash bench/deps.sh .venv/bin/python        (what `make bench-deps` runs)
set -euo pipefail

PY=${1:?"usage: bench/deps.sh PYTHON  (the python of the venv, e.g. .venv/bin/python)"}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# -q twice keeps pip to warnings and errors.
"$PY" -m pip install --disable-pip-version-check -qq -r "$HERE/requirements-bench.txt"
installed=$("$PY" -m pip --disable-pip-version-check list 2>/dev/null \
    | awk 'tolower($1) ~ /^(rule-engine|zen-engine|common-expression-language|cel-python|redis|hiredis|matplotlib)$/ {printf "%s %s  ", $1, $2}')
echo "bench-deps: Python peers: ${installed}"

if command -v redis-server >/dev/null 2>&1; then
    echo "bench-deps: $(redis-server --version | cut -d' ' -f1-3) already on PATH"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "bench-deps: redis-server is not on PATH and there is no apt-get here; install redis-server (>= 6.2) by hand" >&2
    exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi
# The package installs a service unit; in a container without systemd nothing
# starts it, and the suite starts its own server on a free port either way.
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq >/dev/null
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null
if ! command -v redis-server >/dev/null 2>&1; then
    echo "bench-deps: the redis-server package is installed but redis-server is not on PATH (Debian puts it in /usr/bin)" >&2
    exit 1
fi
echo "bench-deps: installed $(redis-server --version | cut -d' ' -f1-3)"

#!/usr/bin/env bash
# Ensure a Python virtual environment with pyzmq exists at <repo root>/.venv
# and print the path of its python interpreter on stdout (and nothing else).
# Progress messages go to stderr. Non-interactive: safe under CI=true with no
# stdin.
#
# If ZMTP_PYTHON is set, it is taken as the interpreter to use and printed
# as-is without any checks.
#
# pyzmq 27.1.0 bundles libzmq 4.3.5, the reference peer for the interop tests
# and for tests/peers/capture_golden.py.
set -euo pipefail

PYZMQ_VERSION="27.1.0"

if [[ -n "${ZMTP_PYTHON:-}" ]]; then
    printf '%s\n' "$ZMTP_PYTHON"
    exit 0
fi

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
venv="$repo_root/.venv"
py="$venv/bin/python"

if [[ -x "$py" ]] && "$py" -c 'import zmq' </dev/null >/dev/null 2>&1; then
    printf '%s\n' "$py"
    exit 0
fi

if [[ ! -x "$py" ]]; then
    echo "ensure-pyzmq: creating virtual environment at $venv" >&2
    python3 -m venv "$venv" </dev/null >&2
fi

echo "ensure-pyzmq: installing pyzmq==$PYZMQ_VERSION into $venv" >&2
PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    "$venv/bin/pip" install --quiet "pyzmq==$PYZMQ_VERSION" </dev/null >&2

if ! "$py" -c 'import zmq' </dev/null >/dev/null 2>&1; then
    echo "ensure-pyzmq: pyzmq still not importable from $py" >&2
    exit 1
fi

echo "ensure-pyzmq: ready ($("$py" -c 'import zmq; print("pyzmq", zmq.__version__, "libzmq", zmq.zmq_version())' </dev/null))" >&2
printf '%s\n' "$py"

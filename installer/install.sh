#!/bin/sh
# Install Chronoscope for editors (Linux, macOS): runs installer/install.py with a Python 3.10 or newer.
# Every option is passed on, e.g.:  sh installer/install.sh --gpu cpu --no-ofx
# Set PYTHON to choose the interpreter.
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python3.10; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        exec "$candidate" "$here/install.py" "$@"
    fi
done
echo "install.sh: Chronoscope needs Python 3.10 or newer with the venv module" >&2
echo "  Debian/Ubuntu: sudo apt-get install python3 python3-venv;  macOS: https://www.python.org/downloads/" >&2
exit 1

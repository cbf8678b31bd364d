#!/bin/sh
# Installs jrnl 4.6 (the terminal journal, from PyPI) into a virtual environment of its own for
# `duet-bench --jrnl`, and prints the path of its `jrnl`. Needs python3 with venv and pip.
#   target/release/duet-bench --items 10000 --jrnl "$(bench/setup-jrnl.sh)"
set -eu
dir="${1:-target/jrnl-venv}"
if [ ! -x "$dir/bin/jrnl" ]; then
    python3 -m venv "$dir" >&2
    "$dir/bin/pip" install --quiet --disable-pip-version-check "jrnl==4.6" >&2
fi
echo "$dir/bin/jrnl"

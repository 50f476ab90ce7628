#!/usr/bin/env bash
# Regenerates requirements.lock from pyproject.toml (runtime + the `test` extra), with hashes.
# The versions pinned today are kept unless --upgrade is given; pip-tools runs in a
# throw-away venv so it never enters the project's own.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q --disable-pip-version-check pip-tools
keep=()
if [[ "${1:-}" != "--upgrade" && -f requirements.lock ]]; then
  grep -E '^[A-Za-z0-9_.-]+==' requirements.lock | sed 's/ .*//' > "$tools/pins.txt"
  keep=(--constraint "$tools/pins.txt")
fi
{
  echo "# The exact, hashed dependencies of the runbook and its tests (pyproject.toml: runtime + [test])."
  echo "# Made by scripts/lock.sh (pip-compile --generate-hashes); \`scripts/lock.sh --upgrade\` takes newer"
  echo "# versions. Do not edit by hand. scripts/bootstrap.sh installs it into .venv."
  "$tools/venv/bin/pip-compile" -q --no-header --no-annotate --extra test --generate-hashes --strip-extras \
    --allow-unsafe --no-emit-index-url --no-emit-find-links "${keep[@]}" -o - pyproject.toml
} > "$tools/lock"
mv "$tools/lock" requirements.lock
echo "requirements.lock: $(grep -cE '^[A-Za-z0-9_.-]+==' requirements.lock) packages"

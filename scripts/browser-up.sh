#!/bin/bash
# browser-up.sh - the Chromium that the dashboard's browser tests drive (tests/ui), from Debian's
# packages: Playwright is pointed at it (its own browser download cannot work here).
# Env file for tests: /var/lib/jobgate-test/browser.env (JOBGATE_TEST_CHROMIUM).
# Idempotent: a warm run checks that the browser starts. Nothing to stop: no daemon.
set -euo pipefail
JG_NAME=browser-up
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

BIN=/usr/bin/chromium
apt_ensure chromium fonts-dejavu-core
mkdir -p "$JG_VAR"
"$BIN" --version >/dev/null 2>&1 || die "$BIN does not start (see $JG_LOG/apt.log)"
printf 'JOBGATE_TEST_CHROMIUM=%s\n' "$BIN" | write_env "$JG_VAR/browser.env"
log "$("$BIN" --version 2>/dev/null | head -n1)"

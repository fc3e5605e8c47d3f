#!/bin/bash
# psij-suite.sh - run PSI/J's own test suite against the `jobgate` executor.
#
#   scripts/psij-suite.sh [local|slurm|remote]...     (default: local slurm)
#
# Downloads the pinned psij-python sdist from PyPI once (its tests/ folder), adds our
# harness (tests/psij/harness: the sdist lacks PSI/J's conftest and helpers), and runs
# pytest --executors=jobgate:single:<url> with HOME, JOBGATE_HOME and the jobgate.toml in
# a fresh scratch folder and a per-test timeout:
#   local    the embedded gateway, destination local       (url: local)
#   slurm    the embedded gateway, a Slurm destination     (url: slurm)
#   remote   a `jobgate serve` started here, its local destination
#            (url: jobgate+http://127.0.0.1:PORT?destination=local, JOBGATE_TOKEN)
# Prints pytest's summary and one count line per run; exits 1 if any test failed, 2 if
# the suite could not run.
#
# Environment: PSIJ_VERSION (pinned, must match the installed psij-python),
# PSIJ_SUITE_CACHE (download cache, default /tmp/jobgate-psij-suite),
# PSIJ_SUITE_TIMEOUT (seconds per test, default 300), PYTHON (default .venv/bin/python),
# PSIJ_SUITE_PARTITION (Slurm partition, default debug), PSIJ_SUITE_ARGS (extra pytest args).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PSIJ_VERSION=${PSIJ_VERSION:-0.9.11}
CACHE=${PSIJ_SUITE_CACHE:-${TMPDIR:-/tmp}/jobgate-psij-suite}
TIMEOUT=${PSIJ_SUITE_TIMEOUT:-300}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
PARTITION=${PSIJ_SUITE_PARTITION:-debug}
HARNESS=$ROOT/tests/psij/harness

say() { echo "[psij-suite] $*" >&2; }
die() { say "ERROR: $*"; exit 2; }

[ -x "$PYTHON" ] || die "no python at $PYTHON (run make, or set PYTHON)"
installed=$("$PYTHON" -c 'import psij; print(psij.__version__)') || die "psij-python is not installed"
[ "$installed" = "$PSIJ_VERSION" ] || die "installed psij-python $installed, suite pinned to $PSIJ_VERSION"

# -- the suite, downloaded once (a marker file says the unpack finished) --------------------
SUITE=$CACHE/psij-python-$PSIJ_VERSION
if [ ! -e "$SUITE/.unpacked" ]; then
  mkdir -p "$CACHE"
  tmp=$(mktemp -d "$CACHE/download.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  say "downloading the psij-python $PSIJ_VERSION sdist from PyPI"
  "$PYTHON" -m pip download --quiet --no-binary :all: --no-deps \
    "psij-python==$PSIJ_VERSION" -d "$tmp" || die "pip download failed"
  tar -xzf "$tmp/psij-python-$PSIJ_VERSION.tar.gz" -C "$tmp" || die "cannot unpack the sdist"
  [ -d "$tmp/psij-python-$PSIJ_VERSION/tests" ] || die "the sdist has no tests/ folder"
  touch "$tmp/psij-python-$PSIJ_VERSION/.unpacked"
  [ -e "$SUITE/.unpacked" ] || rm -rf "$SUITE"  # a partial unpack, not a concurrent run's
  mv -T "$tmp/psij-python-$PSIJ_VERSION" "$SUITE" 2>/dev/null || [ -e "$SUITE/.unpacked" ] \
    || die "cannot move the suite into $SUITE"
  rm -rf "$tmp"
  trap - EXIT
fi
TESTS=$SUITE/tests
cp "$HARNESS/suite_conftest.py" "$TESTS/conftest.py"
cp "$HARNESS/suite_test_tools.py" "$TESTS/_test_tools.py"
cp "$HARNESS/suite_executor_params.py" "$TESTS/executor_test_params.py"
cp "$HARNESS/suite_pytest.ini" "$TESTS/pytest.ini"

# PSI/J's plugin-loader tests need the fixture folders tests/plugins1 and tests/plugins2,
# which the sdist does not ship: they fail the same way for every executor, so not run.
DESELECT=(--deselect test_executor_loading.py)

# -- one run per destination ------------------------------------------------------------------
SERVE_PID=
stop_serve() { if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null; SERVE_PID=; fi; }
trap stop_serve EXIT

start_serve() {  # start_serve SCRATCH -> sets URL and TOKEN
  local scratch=$1 port i
  port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  HOME="$scratch/home" JOBGATE_HOME="$scratch/jobgate" JOBGATE_CONFIG="$scratch/jobgate.toml" \
    "$(dirname "$PYTHON")/jobgate" serve --port "$port" 2>"$scratch/serve.log" &
  SERVE_PID=$!
  for i in $(seq 1 120); do
    if "$PYTHON" -c "import httpx,sys; httpx.get('http://127.0.0.1:$port/api/v1/healthz')" 2>/dev/null; then break; fi
    kill -0 "$SERVE_PID" 2>/dev/null || die "jobgate serve exited: $(tail -5 "$scratch/serve.log")"
    [ "$i" -lt 120 ] || die "jobgate serve did not answer within 60 s"
    sleep 0.5
  done
  TOKEN=$(HOME="$scratch/home" JOBGATE_HOME="$scratch/jobgate" JOBGATE_CONFIG="$scratch/jobgate.toml" \
    "$(dirname "$PYTHON")/jobgate" token create --user psij) || die "jobgate token create failed"
  URL="jobgate+http://127.0.0.1:$port?destination=local"
}

run() {  # run NAME -> prints pytest's summary and "NAME: passed=.. skipped=.. failed=.. errors=.."
  local dest=$1 scratch url=$1 token=
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/jobgate-psij-$dest.XXXXXX")
  mkdir -p "$scratch/home"
  case $dest in
    local)
      printf '[destinations.local]\nscheduler = "local"\n' ;;
    remote)  # PSI/J's tests name absolute paths in its pytest temp dirs: a work root
      printf '[destinations.local]\nscheduler = "local"\nwork_roots = ["%s"]\n' "${TMPDIR:-/tmp}" ;;
    slurm)
      sinfo -h >/dev/null 2>&1 || die "Slurm does not answer (sinfo); start it with scripts/slurm-up.sh"
      printf '[gateway]\ndefault_destination = "slurm"\n\n[destinations.slurm]\n'
      printf 'scheduler = "slurm"\ncapacity = 50\npoll_interval_s = 0.5\n'
      printf 'defaults = { partition = "%s" }\n' "$PARTITION" ;;
    *) die "unknown run $dest (local, slurm or remote)" ;;
  esac > "$scratch/jobgate.toml"
  if [ "$dest" = remote ]; then
    start_serve "$scratch"
    url=$URL token=$TOKEN
  fi
  say "$dest: running PSI/J $PSIJ_VERSION's tests on jobgate:single:$url (scratch: $scratch)"
  local rc=0
  # The client side gets its own HOME (PSI/J writes ~/.psij) and, for remote, no store.
  # shellcheck disable=SC2086  # PSIJ_SUITE_ARGS is a list of words on purpose
  (cd "$TESTS" && env -u JOBGATE_SERVER -u JOBGATE_DEST -u JOBGATE_DATABASE_URL \
      JOBGATE_TOKEN="$token" HOME="$scratch/home" JOBGATE_HOME="$scratch/jobgate" \
      JOBGATE_CONFIG="$scratch/jobgate.toml" \
      "$PYTHON" -m pytest -q --timeout="$TIMEOUT" --executors="jobgate:single:$url" \
      --junitxml="$scratch/junit.xml" "${DESELECT[@]}" ${PSIJ_SUITE_ARGS:-} . \
      | tee "$scratch/pytest.log") >&2 || rc=$?
  stop_serve
  [ -s "$scratch/junit.xml" ] || die "$dest: pytest wrote no report (exit $rc)"
  grep -E ' in [0-9.]+s( \([0-9:]+\))?( =+)?$' "$scratch/pytest.log" | tail -1 || true
  "$PYTHON" - "$dest" "$scratch/junit.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

dest, path = sys.argv[1:]
suite = ET.parse(path).getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
print(f"{dest}: passed={passed} skipped={n['skipped']} failed={n['failures']} errors={n['errors']}")
PY
  # Keep the scratch folder of a failed run for a look; else remove it.
  if [ "$rc" = 0 ]; then rm -rf "$scratch"; else say "$dest: kept $scratch"; fi
  return "$rc"
}

status=0
for dest in "${@:-local slurm}"; do
  for d in $dest; do
    run "$d" || status=1
  done
done
exit "$status"

#!/usr/bin/env bash
# Install what is missing, build Kinema twice (warnings as errors; AddressSanitizer +
# UndefinedBehaviorSanitizer) and run every test suite in both builds, fuzz targets included.
# Tests that read the real data in ../shared/data (or $KINEMA_DATA) skip when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash scripts/install-deps.sh

if [ -z "${KINEMA_DATA:-}" ] && [ -d "$ROOT/../shared/data" ]; then
  export KINEMA_DATA="$ROOT/../shared/data"
fi
echo "test: KINEMA_DATA=${KINEMA_DATA:-<absent: real-data tests skip>}"

jobs=$(nproc 2>/dev/null || echo 2)
summary=()
total_pass=0
total_fail=0
total_skip=0

run_build() { # name, meson options...
  local name=$1; shift
  local dir="$ROOT/build-test-$name"
  echo "=== [$name] configure"
  if [ -d "$dir" ]; then
    meson setup --wipe "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
  echo "=== [$name] build"
  ninja -C "$dir" -j "$jobs" >"$dir/build.log" 2>&1 || { tail -n 60 "$dir/build.log"; return 1; }
  echo "=== [$name] test"
  local rc=0
  meson test -C "$dir" --print-errorlogs --num-processes "$jobs" || rc=$?
  # Count results from meson's machine-readable log.
  local counts
  counts=$(/usr/bin/python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
)
  read -r p f s <<<"$counts"
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
  summary+=("$name: $p passed, $f failed, $s skipped")
  return $rc
}

status=0
run_build release --werror -Dbuildtype=debugoptimized || status=1
# Sanitizers: detect leaks, overflows and undefined behaviour; abort on the first report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_build sanitize --werror -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false || status=1

echo
for line in "${summary[@]}"; do echo "test: $line"; done
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
exit $status

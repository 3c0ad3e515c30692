#!/usr/bin/env bash
# Every program the build makes answers --help: usage on stdout, exit status 0, nothing
# started (the daemon, the CLI and each of its commands, the examples, the benchmarks).
#   test_help.sh BUILD_DIR
set -u
B=$1
fail=0
check() {
  local out rc
  out=$(timeout 10 "$@" --help 2>/dev/null); rc=$?
  if [ $rc -ne 0 ] || ! grep -qi "usage" <<<"$out"; then
    echo "FAIL: $* --help: exit $rc, $(wc -c <<<"$out") bytes of output"; fail=1
  else
    echo "ok: $*"
  fi
}
check "$B/daemon/kinemad"
check "$B/tools/kinema"
for c in detect reconstruct synth-obs rigid skeleton calibrate synth-wand record replay inspect \
         export gesture; do
  check "$B/tools/kinema" "$c"
done
for c in intrinsics wand check import; do check "$B/tools/kinema" calibrate "$c"; done
for c in train classify record; do check "$B/tools/kinema" gesture "$c"; done
n=0
for f in "$B"/examples/* "$B"/bench/bench_*; do
  [ -f "$f" ] && [ -x "$f" ] || continue
  check "$f"; n=$((n + 1))
done
[ $n -ge 10 ] || { echo "FAIL: only $n example and benchmark programs found in $B"; fail=1; }
[ $fail -eq 0 ] && echo "PASS"
exit $fail

#!/usr/bin/env bash
# Integration: `kinema record --synthetic` writes a recording, `kinema inspect` finds it
# sound, `kinemad --config <replay config> --fast --frames N` solves from it, and a cut copy
# (power loss) still replays its complete frames. Bounded by timeouts.
#   test_record_replay.sh KINEMA KINEMAD
set -u
KINEMA=$1
KINEMAD=$2
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
fail() { echo "FAIL: $*"; for f in "$OUT"/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }

timeout 120 "$KINEMA" record --synthetic --cameras 4 --size 640x512 --frames 40 --solved \
  --out "$OUT/rec.kmr" >"$OUT/record.log" 2>&1 || fail "kinema record exited with $?"
timeout 60 "$KINEMA" inspect "$OUT/rec.kmr" >"$OUT/inspect.log" 2>&1 || fail "inspect: $?"
grep -q "index: ok" "$OUT/inspect.log" || fail "index not ok"
grep -q "crc: 200 records ok, 0 errors" "$OUT/inspect.log" || fail "expected 160 images + 40 solved"

cat >"$OUT/replay.yaml" <<YAML
source: replay
replay:
  path: $OUT/rec.kmr
  realtime: true
  loop: false
YAML
timeout 120 "$KINEMAD" --config "$OUT/replay.yaml" --fast --frames 40 --no-zmq --no-osc \
  >"$OUT/kinemad.log" 2>&1 || fail "kinemad exited with $?"
grep -q "done: 40 frame sets" "$OUT/kinemad.log" || fail "kinemad did not solve 40 frame sets"
markers=$(sed -n 's/.*fps), \([0-9.]*\) markers\/frame.*/\1/p' "$OUT/kinemad.log")
awk -v m="$markers" 'BEGIN { exit !(m >= 20) }' || fail "too few markers per frame ($markers)"

# The recording's own solved stream and a replay through `kinema replay` agree on the count.
timeout 120 "$KINEMA" replay "$OUT/rec.kmr" --markers "$OUT/markers.csv" >"$OUT/replay.log" 2>&1 \
  || fail "kinema replay exited with $?"
rows=$(($(wc -l <"$OUT/markers.csv") - 1))
[ "$rows" -ge 800 ] || fail "markers.csv has $rows rows"

# Power loss: cut the file in the middle of a record; it still opens and replays.
size=$(stat -c %s "$OUT/rec.kmr")
head -c $((size * 3 / 4 + 17)) "$OUT/rec.kmr" >"$OUT/cut.kmr"
timeout 60 "$KINEMA" inspect --no-verify "$OUT/cut.kmr" >"$OUT/cut.log" 2>&1
[ $? -eq 1 ] || fail "inspect of a cut file should exit 1"
grep -q "^CUT: offset" "$OUT/cut.log" || fail "cut not reported"
timeout 60 "$KINEMA" replay "$OUT/cut.kmr" --markers "$OUT/cut.csv" >"$OUT/cut-replay.log" 2>&1 \
  || fail "replay of a cut file exited with $?"
echo "record -> inspect -> kinemad replay ($markers markers/frame) -> kinema replay ($rows rows) -> cut file ok"

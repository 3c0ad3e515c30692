#!/usr/bin/env bash
# Integration: Kinema's OSC output (VMC, /kinema/gesture, /kinema frame bundles) parsed by
# clients we did not write, on 127.0.0.1:
#   1. the npm `osc` package (tests/transport/npm: package.json + package-lock.json; installed
#      once into the build dir with `npm ci --offline || npm ci`): receive.js checks the type
#      of every argument of every message;
#   2. liblo's oscdump: the VMC messages and their type tags as liblo prints them.
# Skips (77) cleanly when node/npm or oscdump is missing, or the npm install fails.
#   test_osc_peers.sh SENDER SOURCE_DIR BUILD_DIR
set -u
SENDER=$1
SRC=$2
BUILD=$3
ROUNDS=20
OUT=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$OUT"/*; do echo "--- $f"; head -c 3000 "$f"; done; exit 1; }
skipped=""

# ---------------------------------------------------------------- npm osc
NODE_PORT=$((33000 + $$ % 9000))
if command -v node >/dev/null && command -v npm >/dev/null; then
  NPM_DIR="$BUILD/tests/transport/npm-osc"
  if [ ! -f "$NPM_DIR/node_modules/osc/package.json" ]; then
    mkdir -p "$NPM_DIR"
    cp "$SRC/tests/transport/npm/package.json" "$SRC/tests/transport/npm/package-lock.json" "$NPM_DIR/"
    (cd "$NPM_DIR" && { timeout 120 npm ci --offline --no-audit --no-fund >"$OUT/npm.log" 2>&1 ||
                        timeout 300 npm ci --no-audit --no-fund >>"$OUT/npm.log" 2>&1; })
  fi
  if [ -f "$NPM_DIR/node_modules/osc/package.json" ]; then
    cp "$SRC/tests/transport/npm/receive.js" "$NPM_DIR/receive.js"
    (cd "$NPM_DIR" && timeout 40 node receive.js "$NODE_PORT" "$ROUNDS" >"$OUT/node.json" 2>"$OUT/node.err") &
    NODE=$!
    for _ in $(seq 50); do grep -q ready "$OUT/node.err" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "$OUT/node.err" || fail "node receiver did not start"
    "$SENDER" 127.0.0.1 "$NODE_PORT" "$ROUNDS" >"$OUT/sender1.log" 2>&1 || fail "sender failed"
    wait "$NODE"; rc=$?
    cat "$OUT/node.json"
    [ $rc -eq 0 ] || fail "npm osc receiver found errors"
    echo "npm osc: every VMC and /kinema message parsed with the documented types"
  else
    echo "npm osc: install failed (offline and online), part skipped"; skipped="npm"
  fi
else
  echo "npm osc: node/npm missing (apt-get install nodejs npm), part skipped"; skipped="npm"
fi

# ---------------------------------------------------------------- oscdump
if command -v oscdump >/dev/null; then
  DUMP_PORT=$((34000 + $$ % 9000))
  oscdump -L "$DUMP_PORT" >"$OUT/oscdump.txt" 2>&1 &
  sleep 0.5
  "$SENDER" 127.0.0.1 "$DUMP_PORT" 3 >"$OUT/sender2.log" 2>&1 || fail "sender failed"
  sleep 0.5
  kill %oscdump 2>/dev/null
  d="$OUT/oscdump.txt"
  grep -Eq '/VMC/Ext/OK iiii 1 3 0 1$' "$d" || fail "oscdump: no loaded /VMC/Ext/OK iiii 1 3 0 1"
  grep -Eq '/VMC/Ext/OK iiii 0 3 0 0$' "$d" || fail "oscdump: no /VMC/Ext/OK iiii 0 3 0 0"
  grep -Eq '/VMC/Ext/T f [0-9.]+$' "$d" || fail "oscdump: no /VMC/Ext/T f"
  grep -Eq '/VMC/Ext/Root/Pos sfffffff "root" 0\.0+ 0\.0+ 0\.0+ 0\.0+ 0\.0+ 0\.0+ 1\.0+$' "$d" \
    || fail "oscdump: no /VMC/Ext/Root/Pos"
  for bone in Hips Spine UpperChest Head LeftHand RightLittleDistal LeftToes Jaw; do
    grep -Eq "/VMC/Ext/Bone/Pos sfffffff \"$bone\"( -?[0-9.]+){7}\$" "$d" || fail "oscdump: no Bone/Pos $bone"
  done
  bones=$(grep -c '/VMC/Ext/Bone/Pos sfffffff' "$d")
  [ "$bones" -eq $((3 * 55)) ] || fail "oscdump: $bones Bone/Pos messages, expected 165"
  grep -Eq '/kinema/gesture sisf "swipe_left" [01] "right" 0\.50+$' "$d" || fail "oscdump: no /kinema/gesture"
  echo "oscdump: $bones /VMC/Ext/Bone/Pos (3 x 55 bones), /VMC/Ext/OK, /VMC/Ext/T, Root/Pos, /kinema/gesture with the documented types"
else
  echo "oscdump missing (apt-get install liblo-tools), part skipped"; skipped="$skipped oscdump"
fi
if [ "$skipped" = "npm oscdump" ]; then echo "SKIP: no OSC peer available"; exit 77; fi
echo "PASS"

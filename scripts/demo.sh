#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run kinemad on the
# embedded default (a synthetic 8-camera rig watching a walking actor). While it runs, a
# Python ZeroMQ subscriber and oscdump listen on 127.0.0.1 and show what arrives.
#   scripts/demo.sh [SECONDS]     (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECONDS_TO_RUN=${1:-10}
ZMQ_PORT=${KINEMA_DEMO_ZMQ_PORT:-5555}
OSC_PORT=${KINEMA_DEMO_OSC_PORT:-9000}

bash scripts/install-deps.sh
if [ ! -d build ]; then meson setup build -Dbuildtype=release >/dev/null; fi
echo "demo: building (ninja -C build)"
ninja -C build >/dev/null

OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT

echo "demo: OSC listener: oscdump $OSC_PORT"
oscdump "$OSC_PORT" >"$OUT/osc.txt" 2>&1 &
echo "demo: ZeroMQ subscriber: /usr/bin/python3 examples/kinema_subscribe.py --endpoint tcp://127.0.0.1:$ZMQ_PORT"
/usr/bin/python3 examples/kinema_subscribe.py --endpoint "tcp://127.0.0.1:$ZMQ_PORT" --json \
  --timeout $((SECONDS_TO_RUN + 10)) >"$OUT/zmq.jsonl" 2>"$OUT/zmq.err" &
SUB=$!
sleep 0.5

echo "demo: running build/daemon/kinemad --duration $SECONDS_TO_RUN (embedded default)"
echo "----------------------------------------------------------------------"
build/daemon/kinemad --duration "$SECONDS_TO_RUN" \
  --zmq "tcp://127.0.0.1:$ZMQ_PORT" --osc "127.0.0.1:$OSC_PORT"
echo "----------------------------------------------------------------------"
sleep 0.3
kill "$SUB" 2>/dev/null || true
wait "$SUB" 2>/dev/null || true

frames=$(wc -l <"$OUT/zmq.jsonl" | tr -d ' ')
echo "demo: ZeroMQ subscriber decoded $frames frames from tcp://127.0.0.1:$ZMQ_PORT; the last one:"
tail -n 1 "$OUT/zmq.jsonl" | /usr/bin/python3 -c '
import json, sys
line = sys.stdin.readline()
if not line:
    print("  (none received)"); sys.exit(0)
f = json.loads(line)
print("  frame %d: %d markers, latency capture->publish %.2f ms" % (
    f["frame"], len(f["markers"]), (f["publish_time_ns"] - f["capture_time_ns"]) / 1e6))
for m in f["markers"][:5]:
    print("    id %3d  x %+.4f  y %+.4f  z %+.4f m  residual %.2f px  views %d" % (
        m["id"], m["x"], m["y"], m["z"], m["residual_px"], m["views"]))
if len(f["markers"]) > 5: print("    ... %d more" % (len(f["markers"]) - 5))
'
osc_frames=$(grep -c "/kinema/frame" "$OUT/osc.txt" || true)
osc_markers=$(grep -c "/kinema/marker" "$OUT/osc.txt" || true)
echo "demo: oscdump received $osc_frames /kinema/frame and $osc_markers /kinema/marker messages on udp 127.0.0.1:$OSC_PORT; the first lines:"
grep -m 3 "/kinema/" "$OUT/osc.txt" | sed 's/^/  /' || true

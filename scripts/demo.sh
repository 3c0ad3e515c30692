#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run kinemad on the
# embedded default (a synthetic 8-camera rig watching a walking actor with a head band and a
# hand-held prop). While it runs, a Python ZeroMQ subscriber and oscdump (Kinema's OSC
# namespace and a VMC avatar receiver) listen on 127.0.0.1 and show what arrives.
#   scripts/demo.sh [SECONDS]     (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECONDS_TO_RUN=${1:-10}
ZMQ_PORT=${KINEMA_DEMO_ZMQ_PORT:-5555}
OSC_PORT=${KINEMA_DEMO_OSC_PORT:-9000}
VMC_PORT=${KINEMA_DEMO_VMC_PORT:-39539}

bash scripts/install-deps.sh
if [ ! -d build ]; then meson setup build -Dbuildtype=release >/dev/null; fi
echo "demo: building (ninja -C build)"
ninja -C build >/dev/null

OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT

echo "demo: OSC listener: oscdump $OSC_PORT; VMC (avatar) listener: oscdump $VMC_PORT"
oscdump "$OSC_PORT" >"$OUT/osc.txt" 2>&1 &
oscdump "$VMC_PORT" >"$OUT/vmc.txt" 2>&1 &
# The embedded default plus the VMC sender (off unless configured), so an avatar in a VMC
# receiver (Unity, VSeeFace, ...) listening on $VMC_PORT would follow the actor.
cat >"$OUT/demo.yaml" <<YAML
transport:
  vmc: {enabled: true, destinations: [{host: 127.0.0.1, port: $VMC_PORT}]}
YAML
echo "demo: ZeroMQ subscriber: /usr/bin/python3 examples/kinema_subscribe.py --endpoint tcp://127.0.0.1:$ZMQ_PORT"
/usr/bin/python3 examples/kinema_subscribe.py --endpoint "tcp://127.0.0.1:$ZMQ_PORT" --json \
  --timeout $((SECONDS_TO_RUN + 10)) >"$OUT/zmq.jsonl" 2>"$OUT/zmq.err" &
SUB=$!
sleep 0.5

echo "demo: running build/daemon/kinemad --config demo.yaml --duration $SECONDS_TO_RUN (embedded default + VMC)"
echo "----------------------------------------------------------------------"
build/daemon/kinemad --config "$OUT/demo.yaml" --duration "$SECONDS_TO_RUN" \
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
for m in f["markers"][:3]:
    print("    marker id %3d  x %+.4f  y %+.4f  z %+.4f m  residual %.2f px  views %d" % (
        m["id"], m["x"], m["y"], m["z"], m["residual_px"], m["views"]))
if len(f["markers"]) > 3: print("    ... %d more markers" % (len(f["markers"]) - 3))
names = {1: "head", 2: "prop"}
for b in f.get("rigid_bodies", []):
    print("    rigid body %d (%s): %s  pos %+.4f %+.4f %+.4f m  quat %+.3f %+.3f %+.3f %+.3f  error %.2f mm" % (
        b["id"], names.get(b["id"], "?"), "tracked" if b["tracked"] else "lost",
        *b["pos"], *b["rot"], b["error_m"] * 1e3))
for k in f.get("skeletons", []):
    if not k["tracked"]:
        print("    skeleton person %d: not found yet" % k["person"]); continue
    j = {x["name"]: x for x in k["joints"]}
    print("    skeleton person %d: %d joints (Unity HumanBodyBones, %d observed), %d markers, residual %.2f mm" % (
        k["person"], len(k["joints"]), sum(x["observed"] for x in k["joints"]), k["markers_used"],
        k["residual_m"] * 1e3))
    for n in ("Hips", "Head", "LeftHand", "RightHand"):
        print("      %-9s pos %+.3f %+.3f %+.3f m  rot %+.3f %+.3f %+.3f %+.3f" % (n, *j[n]["pos"], *j[n]["rot"]))
hands = f.get("hands", [])
if hands: print("    hands: " + ", ".join("%s of person %d" % (h["side"], h["person"]) for h in hands))
cams = f.get("camera_status", [])
if cams: print("    cameras: " + " ".join(c["state"] for c in cams))
'
osc_frames=$(grep -c "/kinema/frame" "$OUT/osc.txt" || true)
osc_markers=$(grep -c "/kinema/marker" "$OUT/osc.txt" || true)
echo "demo: oscdump received $osc_frames /kinema/frame and $osc_markers /kinema/marker messages on udp 127.0.0.1:$OSC_PORT; the first lines:"
grep -m 3 "/kinema/" "$OUT/osc.txt" | sed 's/^/  /' || true
grep -m 2 "/kinema/skeleton\|/kinema/rigid" "$OUT/osc.txt" | sed 's/^/  /' || true
vmc_bones=$(grep -c "/VMC/Ext/Bone/Pos" "$OUT/vmc.txt" || true)
echo "demo: a VMC receiver on udp 127.0.0.1:$VMC_PORT got $vmc_bones /VMC/Ext/Bone/Pos messages (the actor's skeleton as an avatar), e.g.:"
grep -m 2 "/VMC/Ext/Bone/Pos" "$OUT/vmc.txt" | sed 's/^/  /' || true
echo "demo: gesture events (hand poses, swipes, waves) are on the ZeroMQ topic \"gesture\", hand-eye events"
echo "      (gaze, reach, look-and-select) on \"handeye\":"
echo "      /usr/bin/python3 examples/kinema_subscribe.py --topic gesture   (the walking actor makes none;"
echo "      send hand landmarks to transport.input, docs/protocol.md \"Input\", or run examples/gesture_monitor)"

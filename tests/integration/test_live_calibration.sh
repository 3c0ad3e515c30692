#!/usr/bin/env bash
# Integration: the live wand calibration of kinemad driven over its control socket the way an
# operator does it. kinemad runs the synthetic wand scene (a calibration take rendered on the
# synthetic ring rig: the wand waved for WAND_S seconds, then the L-frame on the floor) but
# solves with a deliberately wrong rig (every camera moved 4 cm and turned 1.5 deg; intrinsics
# exact). A Python client (pyzmq) sends calibrate start, polls the wand coverage while the
# wand is waved, ground when the L-frame lies on the floor, solve, polls the progress until
# done, and apply with a path. Checked: the saved rig against the scene's true rig (camera
# centres within 1 mm, rotations within 0.05 deg: in the world frame when the daemon solved
# the L-frame, else after the best rigid motion), the wand length error, and the daemon's
# markers after apply (the L-frame's 4 markers, seen by every camera, where the L-frame lies).
# Bounded: every wait has a deadline.
#   test_live_calibration.sh KINEMAD KINEMA [SANITIZE]
set -u
KINEMAD=$1
KINEMA=$2
SANITIZE=${3:-none}
PY=/usr/bin/python3
if ! "$PY" -c 'import zmq' 2>/dev/null; then echo "SKIP: /usr/bin/python3 has no zmq (apt-get install python3-zmq)"; exit 77; fi

OUT=$(mktemp -d)
DAEMON=
cleanup() { [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT
CONTROL_PORT=$((43000 + $$ % 9000))
fail() { echo "FAIL: $*"; echo "--- kinemad log"; tail -30 "$OUT/kinemad.log"; exit 1; }
T_START=$(date +%s.%N)

# A sanitizer build (-O0, instrumented) cannot render and detect 8 cameras at 60 Hz in real
# time on a 2-core machine: the same take at 30 Hz there (fewer frames, same wave).
RATE=60; WAND_S=12
if [ "$SANITIZE" != "none" ]; then RATE=30; fi

# The scene's true rig (the synthetic ring rig of seed 1, the wand generator's truth) and the
# operator's out-of-date copy of it.
timeout 60 "$KINEMA" synth-wand --out /dev/null --frames 1 --truth-out "$OUT/truth.yaml" \
  >"$OUT/synth.log" 2>&1 || { cat "$OUT/synth.log"; fail "kinema synth-wand"; }

cat >"$OUT/rigtool.py" <<'PY'
# The rig YAML of formats.md (OpenCV FileStorage) in plain Python (no numpy): cameras' K, R,
# t; a perturbed copy; rigs compared directly or after the best rigid motion (Horn).
import math, random, re

MAT = re.compile(r'(\w+): !!opencv-matrix \{rows: (\d+), cols: (\d+), dt: d, data: \[([^\]]*)\]\}')

def read(path):
    cams, cur = [], None
    for line in open(path):
        if re.match(r'^camera_\d+:', line):
            cur = {}
            cams.append(cur)
        m = MAT.search(line)
        if m and cur is not None:
            cur[m.group(1)] = [float(x) for x in m.group(4).split(',')]
    return cams

def matmul(a, b):
    return [sum(a[3*i+k] * b[3*k+j] for k in range(3)) for i in range(3) for j in range(3)]

def transpose(a):
    return [a[3*j+i] for i in range(3) for j in range(3)]

def apply(a, v):
    return [sum(a[3*i+k] * v[k] for k in range(3)) for i in range(3)]

def centre(cam):
    return [-x for x in apply(transpose(cam['rotation']), cam['translation'])]

def axis_angle(axis, angle):
    n = math.sqrt(sum(x*x for x in axis)); x, y, z = (c / n for c in axis)
    c, s, C = math.cos(angle), math.sin(angle), 1 - math.cos(angle)
    return [c+x*x*C, x*y*C-z*s, x*z*C+y*s, y*x*C+z*s, c+y*y*C, y*z*C-x*s, z*x*C-y*s,
            z*y*C+x*s, c+z*z*C]

def angle_deg(ra, rb):
    d = matmul(ra, transpose(rb))
    return math.degrees(math.acos(max(-1.0, min(1.0, (d[0] + d[4] + d[8] - 1) / 2))))

def perturb(src, dst, seed, shift_m, turn_deg):
    """Every camera centre moved by shift_m, every camera turned by turn_deg about a random
    axis; intrinsics untouched."""
    rnd = random.Random(seed)
    cams = read(src)
    ci, out = -1, []
    for line in open(src).read().split('\n'):
        if re.match(r'^camera_\d+:', line):
            ci += 1
            cam = cams[ci]
            d = [rnd.gauss(0, 1) for _ in range(3)]
            n = math.sqrt(sum(x*x for x in d))
            c = [a + shift_m * b / n for a, b in zip(centre(cam), d)]
            r = matmul(axis_angle([rnd.gauss(0, 1) for _ in range(3)], math.radians(turn_deg)),
                       cam['rotation'])
            cam['new'] = {'rotation': r, 'translation': [-x for x in apply(r, c)]}
        m = MAT.search(line)
        if m and m.group(1) in ('rotation', 'translation') and ci >= 0:
            line = (line[:m.start(4)] + ', '.join(repr(x) for x in cams[ci]['new'][m.group(1)])
                    + line[m.end(4):])
        out.append(line)
    open(dst, 'w').write('\n'.join(out))

def _max_eigvec(a, n=4):
    """Eigenvector of the largest eigenvalue of a symmetric matrix (cyclic Jacobi)."""
    a = [row[:] for row in a]
    v = [[float(i == j) for j in range(n)] for i in range(n)]
    for _ in range(100):
        if max(abs(a[i][j]) for i in range(n) for j in range(n) if i != j) < 1e-15:
            break
        for p in range(n):
            for q in range(p + 1, n):
                if abs(a[p][q]) < 1e-300:
                    continue
                th = 0.5 * math.atan2(2 * a[p][q], a[q][q] - a[p][p])
                c, s = math.cos(th), math.sin(th)
                for k in range(n):
                    a[k][p], a[k][q] = c * a[k][p] - s * a[k][q], s * a[k][p] + c * a[k][q]
                for k in range(n):
                    a[p][k], a[q][k] = c * a[p][k] - s * a[q][k], s * a[p][k] + c * a[q][k]
                for k in range(n):
                    v[k][p], v[k][q] = c * v[k][p] - s * v[k][q], s * v[k][p] + c * v[k][q]
    i = max(range(n), key=lambda k: a[k][k])
    return [v[k][i] for k in range(n)]

def rigid_fit(src, dst):
    """Q, T minimising sum |Q src_i + T - dst_i|^2 (Horn 1987, unit quaternions)."""
    n = len(src)
    cs = [sum(p[k] for p in src) / n for k in range(3)]
    cd = [sum(p[k] for p in dst) / n for k in range(3)]
    S = [[sum((p[i] - cs[i]) * (q[j] - cd[j]) for p, q in zip(src, dst)) for j in range(3)]
         for i in range(3)]
    (xx, xy, xz), (yx, yy, yz), (zx, zy, zz) = S
    w, x, y, z = _max_eigvec([[xx + yy + zz, yz - zy, zx - xz, xy - yx],
                              [yz - zy, xx - yy - zz, xy + yx, zx + xz],
                              [zx - xz, xy + yx, -xx + yy - zz, yz + zy],
                              [xy - yx, zx + xz, yz + zy, -xx - yy + zz]])
    Q = [w*w+x*x-y*y-z*z, 2*(x*y-w*z), 2*(x*z+w*y),
         2*(x*y+w*z), w*w-x*x+y*y-z*z, 2*(y*z-w*x),
         2*(x*z-w*y), 2*(y*z+w*x), w*w-x*x-y*y+z*z]
    qc = apply(Q, cs)
    return Q, [cd[k] - qc[k] for k in range(3)]

def compare(truth, solved, align):
    """Per camera: centre distance (mm), rotation angle (deg), focal length ratio - 1; with
    align, after moving the solved world onto the true one by the best rigid motion of the
    camera centres (no scale: the wand gives it). Also Q, T (solved world -> true world)."""
    a, b = read(truth), read(solved)
    assert len(a) == len(b), (len(a), len(b))
    ct, cs = [centre(c) for c in a], [centre(c) for c in b]
    Q, T = rigid_fit(cs, ct) if align else ([1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0])
    res = []
    for ca, cb, pt, ps in zip(a, b, ct, cs):
        moved = [u + v for u, v in zip(apply(Q, ps), T)]
        res.append((math.dist(moved, pt) * 1000,
                    angle_deg(matmul(cb['rotation'], transpose(Q)), ca['rotation']),
                    cb['camera_matrix'][0] / ca['camera_matrix'][0] - 1))
    return res, Q, T
PY
"$PY" -c "import sys; sys.path.insert(0, '$OUT'); import rigtool; rigtool.perturb('$OUT/truth.yaml', '$OUT/bumped.yaml', 7, 0.04, 1.5)" \
  || fail "perturbing the rig"

cat >"$OUT/wand.yaml" <<YAML
synthetic: {scene: wand, wand_seconds: $WAND_S, lframe_seconds: 600, rate_hz: $RATE}
rig: $OUT/bumped.yaml
YAML
timeout 150 "$KINEMAD" --config "$OUT/wand.yaml" --control "tcp://127.0.0.1:$CONTROL_PORT" \
  --no-zmq --no-osc --markers-out "$OUT/markers.csv" >"$OUT/kinemad.out" 2>"$OUT/kinemad.log" &
DAEMON=$!

# The operator. Prints every request and reply (docs/calibration.md quotes them).
"$PY" - "$CONTROL_PORT" "$RATE" "$WAND_S" "$OUT" <<'PY' >"$OUT/operator.txt" 2>&1
import json, sys, time, zmq
port, rate, wand_s, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
ctx = zmq.Context()
t0 = time.time()
def ask(req, show=True):
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.RCVTIMEO, 5000)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(f"tcp://127.0.0.1:{port}")
    raw = json.dumps(req, separators=(',', ':'))
    s.send(raw.encode())
    reply = s.recv().decode()
    s.close()
    if show:
        print(f"[{time.time() - t0:5.1f} s] > {raw}\n          < {reply}", flush=True)
    return json.loads(reply)
def deadline(what, seconds=100):
    if time.time() - t0 > seconds:
        sys.exit(f"FAIL: timed out waiting for {what}")
def frame():
    """The frame set the daemon last solved: scene time frame / rate."""
    return ask({"cmd": "status"}, False)["status"]["frame"]
def calib(action, show=True, **kw):
    return ask(dict({"cmd": "calibrate", "action": action}, **kw), show)

while True:
    try:
        frame()
        break
    except zmq.error.Again:
        deadline("the control socket", 20)
r = calib("start")
assert r["ok"] and r["state"] == "collecting" and r["phase"] == "wand", r
# The wand is waved until wand_s seconds of scene time; the coverage grows.
end = wand_s * rate
while (f := frame()) < end + 0.2 * rate:
    r = calib("status", False)
    print(f"  waving: frame {f}, wand_frames {r['wand_frames']}, camera_views {r['camera_views']}",
          flush=True)
    deadline("the end of the wave")
    time.sleep(max(0.05, min(1.0, (end + 0.2 * rate - f) / rate)))
r = calib("status")
# A loaded machine may drop frames (the source is paced in real time): half is plenty.
assert r["wand_frames"] >= 0.4 * wand_s * rate, r
assert min(r["camera_views"]) >= 0.8 * r["wand_frames"], r
# The L-frame lies on the floor now.
r = calib("ground")
assert r["ok"] and r["phase"] == "ground", r
f0 = frame()
while frame() < f0 + rate:
    deadline("L-frame frames")
    time.sleep(0.1)
r = calib("solve")
assert r["ok"] and r["state"] in ("solving", "done"), r
t_solve = time.time()
while True:
    r = calib("status", False)
    print(f"  {time.time() - t_solve:5.2f} s: {r['state']}, fraction {r['fraction']:.2f}, "
          f"{r['stage']}", flush=True)
    if r["state"] != "solving":
        break
    deadline("the solve")
    time.sleep(0.25)
r = calib("status")
assert r["state"] == "done", r
json.dump(r, open(f"{out}/result.json", "w"))
r = calib("apply", path=f"{out}/solved.yaml")
assert r["ok"] and r["state"] == "done", r
applied = frame()
while frame() < applied + 1.0 * rate:
    deadline("frames after apply")
    time.sleep(0.1)
r = ask({"cmd": "status"})
assert r["ok"] and r["status"]["markers"] >= 4, r
open(f"{out}/applied_frame", "w").write(str(applied))
PY
rc=$?
cat "$OUT/operator.txt"
[ $rc -eq 0 ] || fail "operator script exited with $rc"
kill -INT "$DAEMON"
wait "$DAEMON"
drc=$?
DAEMON=
[ $drc -eq 0 ] || fail "kinemad exited with $drc"
! grep -E "runtime error|Sanitizer" "$OUT/kinemad.log" || fail "sanitizer report in kinemad's log"

# The saved rig against the truth, and the daemon's markers before and after apply.
"$PY" - "$OUT" "$RATE" <<'PY' || fail "calibration not accurate enough"
import json, math, sys
sys.path.insert(0, sys.argv[1])
import rigtool
out, rate = sys.argv[1], float(sys.argv[2])
result = json.load(open(f"{out}/result.json"))
applied = int(open(f"{out}/applied_frame").read())
# The calibration itself, gauge-free: the solved rig moved onto the truth by the best rigid
# motion of its camera centres (no scale: the wand gives it).
res, Q, T = rigtool.compare(f"{out}/truth.yaml", f"{out}/solved.yaml", True)
bumped, _, _ = rigtool.compare(f"{out}/truth.yaml", f"{out}/bumped.yaml", False)
dc = [r[0] for r in res]; da = [r[1] for r in res]; df = [abs(r[2]) for r in res]
print(f"bumped rig: centres off by {min(r[0] for r in bumped):.1f}..{max(r[0] for r in bumped):.1f} mm, "
      f"rotations by {max(r[1] for r in bumped):.2f} deg")
print(f"solved rig, gauge-free: camera centres max {max(dc):.3f} mm (mean {sum(dc)/len(dc):.3f}), "
      f"rotations max {max(da):.4f} deg, focal lengths within {max(df):.1e}")
print(f"daemon: RMS {result['rms_px']:.3f} px, wand length error RMS "
      f"{result['wand_length_error_rms_mm']:.3f} mm, {result['frames_used']} frames, "
      f"solve {result['solve_seconds']:.2f} s, ground {result['ground']}")
assert max(dc) < 1.0, dc
assert max(da) < 0.05, da
assert max(df) < 1e-9, df   # intrinsics kept
assert result["rms_px"] < 0.3 and result["wand_length_error_rms_mm"] < 0.5, result
# The world frame: where the solved world's origin and axes lie in the true one.
tilt = rigtool.angle_deg(Q, [1, 0, 0, 0, 1, 0, 0, 0, 1])
if result["ground"]:
    direct, _, _ = rigtool.compare(f"{out}/truth.yaml", f"{out}/solved.yaml", False)
    print(f"world frame from the L-frame: origin off by {math.dist(T, [0, 0, 0])*1000:.3f} mm, "
          f"axes by {tilt:.4f} deg; camera centres in it max {max(r[0] for r in direct):.3f} mm, "
          f"rotations max {max(r[1] for r in direct):.4f} deg")
    assert math.dist(T, [0, 0, 0]) < 0.001 and tilt < 0.05, (T, tilt)
    Q, T = [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0]   # markers judged in the world frame itself
else:
    print("NOTE: the daemon did not solve the world frame from the L-frame (ground: false): "
          "the rig is in the root camera's gauge; markers judged after the rigid motion")

# The daemon's markers: with the bumped rig the L-frame is not reconstructed (ghosts seen by
# 2 cameras); after apply its 4 markers are, by every camera, where it lies (within 1 mm in
# the solved world, brought onto the true one by Q, T).
lframe = [(0.0, 0.007, 0.0), (0.3, 0.007, 0.0), (0.5, 0.007, 0.0), (0.0, 0.007, 0.2)]
before, after = {}, {}
for line in open(f"{out}/markers.csv").readlines()[1:]:
    f, mid, x, y, z, views = line.split(',')
    f = int(f)
    p = [float(x), float(y), float(z)]
    if f > applied + 0.2 * rate:
        after.setdefault(f, []).append((rigtool.apply(Q, p), int(views)))
    elif applied - 0.5 * rate < f < applied - 0.1 * rate:
        before.setdefault(f, []).append((p, int(views)))
assert len(after) >= 0.5 * rate, len(after)
worst, views, extra = 0.0, [], 0
for f, ms in after.items():
    moved = [([a + b for a, b in zip(p, T)], v) for p, v in ms]
    for q in lframe:   # every L-frame marker is there, seen by every camera
        p, v = min(moved, key=lambda m: math.dist(m[0], q))
        worst = max(worst, math.dist(p, q))
        views.append(v)
    extra += len(ms) != 4
# A ghost (two reflections that happen to triangulate) may appear now and then.
assert extra <= 0.05 * len(after), f"{extra} of {len(after)} frames without exactly 4 markers"
mb = sum(len(m) for m in before.values()) / max(1, len(before))
vb = sum(v for m in before.values() for _, v in m) / max(1, sum(len(m) for m in before.values()))
full = sum(v == 8 for v in views) / len(views)
print(f"markers before apply: {mb:.1f}/frame seen by {vb:.1f} cameras; after: the L-frame's 4 in "
      f"{len(after)} frames ({extra} with a ghost), seen by {min(views)}..{max(views)} cameras "
      f"(all 8: {100 * full:.0f} %), within {worst*1000:.3f} mm of the L-frame")
assert worst < 0.001, worst
# A loaded machine may complete a frame set without a late camera now and then.
assert min(views) >= 3 and full >= 0.9, views
PY
awk -v t0="$T_START" -v t1="$(date +%s.%N)" 'BEGIN { printf "test duration %.1f s\n", t1 - t0 }'
echo "PASS"

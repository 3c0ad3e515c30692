#!/usr/bin/env python3
"""Subscribe to kinemad's ZeroMQ stream and print each solved frame.

Needs only pyzmq and the standard library: the wire format (docs/protocol.md, v1.2: markers,
2D observations, rigid bodies, skeletons, hands, events, camera status) is decoded with
`struct`. Examples:

    python3 examples/kinema_subscribe.py                       # human-readable
    python3 examples/kinema_subscribe.py --json --count 10     # 10 JSON lines, then exit
    python3 examples/kinema_subscribe.py --endpoint tcp://10.0.0.5:5555 --topic markers
    python3 examples/kinema_subscribe.py --topic skeleton              # skeletons only
    python3 examples/kinema_subscribe.py --topic status                # JSON once a second
    python3 examples/kinema_subscribe.py --latest tcp://127.0.0.1:5558 # newest frame only

Exit status: 0 after --count frames (or Ctrl-C), 1 on --timeout, 2 on a malformed message.
"""
import argparse
import json
import struct
import sys
import time

import zmq

MAGIC = b"KMF1"
VERSION = 1
# Fixed header, 56 bytes (docs/protocol.md "Header").
HEADER = struct.Struct("<4sHHHHHHII4Q")
# Section table entry, 16 bytes: type, record_size, count, offset, length.
ENTRY = struct.Struct("<HHIII")
# Marker record v1, 24 bytes: id, x, y, z, residual_px, views, flags.
MARKER = struct.Struct("<IffffHH")
# 2D observation record v1, 16 bytes: x, y, area_px, camera, flags.
OBS2D = struct.Struct("<fffHH")
# v1.2 records (docs/protocol.md has the byte tables).
# Rigid body, 40 bytes: id, flags (bit 0 tracked), markers_used, x y z, qx qy qz qw, error_m.
RIGID = struct.Struct("<IHH3f4ff")
# Skeleton, 944 bytes: person, flags (bit 0 tracked), joint_count, joint_size, joints_offset,
# markers_used, residual_m, (v1.3) joints_observed u32; then joint_count joints of joint_size
# bytes from joints_offset.
SKELETON = struct.Struct("<HHHHHHf")
# Joint, 44 bytes: x y z, world qx qy qz qw, local qx qy qz qw.
JOINT = struct.Struct("<3f4f4f")
JOINT_NAMES = ("Hips", "Spine", "Chest", "Neck", "Head", "LeftShoulder", "LeftUpperArm",
               "LeftLowerArm", "LeftHand", "RightShoulder", "RightUpperArm", "RightLowerArm",
               "RightHand", "LeftUpperLeg", "LeftLowerLeg", "LeftFoot", "LeftToes",
               "RightUpperLeg", "RightLowerLeg", "RightFoot", "RightToes")
# Hand, 288 bytes: person (-1 unknown), side, flags (bit 0 centre valid), landmark_valid,
# time_ns, confidence, centre x y z, 21 landmarks x y z, 4 bytes padding.
HAND = struct.Struct("<hBBIqf3f63f4x")
HAND_SIDES = ("unknown", "left", "right")
# Event, 176 bytes: type, hand, pad, person, t_ns, t_start_ns, t_end_ns, score,
# gaze_hand_angle_rad, gaze_lead_ms, same_target, pad, name[64], target[64].
EVENT = struct.Struct("<HBxiqqqfffhxx64s64s")
EVENT_TYPES = ("pose_start", "pose_hold", "pose_end", "gesture", "gaze_enter", "gaze_leave",
               "reach", "hand_leave", "select")
# Camera status, 32 bytes: state, 7 bytes reserved, frames, dropped, errors.
CAMERA_STATUS = struct.Struct("<B7xQQQ")
CAMERA_STATES = ("ok", "missing", "disconnected", "inactive")
SECTION_MARKERS = 1
SECTION_RIGID_BODIES = 2
SECTION_SKELETONS = 3
SECTION_HAND_POSES = 4
SECTION_EVENTS = 5
SECTION_CAMERA_STATUS = 6
SECTION_OBSERVATIONS_2D = 7
# Topics whose payload is a wire message; "status", "gesture" (hand poses, gestures) and
# "handeye" (gaze, reach, select) carry JSON text.
WIRE_TOPICS = ("frame", "markers", "obs2d", "rigid", "skeleton", "hands")
JSON_TOPICS = ("status", "gesture", "handeye")
MAX_CAMERAS = 64


class WireError(ValueError):
    """A malformed message: the text names the byte offset."""


def _nan_to_none(value):
    return None if value != value else value


def _name(raw, at):
    end = raw.find(b"\0")
    if end < 0:
        raise WireError(f"offset {at}: name field without a NUL")
    return raw[:end].decode("utf-8", errors="replace")


def _decode_record(kind, buf, at, record_size):
    """One v1.2 record at `at` as a dict (None for kinds this decoder does not know)."""
    if kind == SECTION_RIGID_BODIES:
        rid, flags, used, x, y, z, qx, qy, qz, qw, error = RIGID.unpack_from(buf, at)
        return {"id": rid, "tracked": bool(flags & 1), "markers_used": used,
                "pos": [x, y, z], "rot": [qx, qy, qz, qw], "error_m": error}
    if kind == SECTION_SKELETONS:
        (person, flags, joint_count, joint_size, joints_offset, used,
         residual) = SKELETON.unpack_from(buf, at)
        if (joint_size < JOINT.size or joints_offset < SKELETON.size or
                joints_offset + joint_count * joint_size > record_size):
            raise WireError(f"offset {at}: inconsistent skeleton joint layout")
        # v1.3 senders put the joints_observed mask after the header (joints_offset 20); a
        # v1.2 sender's tracked pose has every joint observed.
        if joints_offset >= SKELETON.size + 4:
            observed = struct.unpack_from("<I", buf, at + SKELETON.size)[0]
        else:
            observed = (1 << len(JOINT_NAMES)) - 1 if flags & 1 else 0
        joints = []
        for j in range(min(joint_count, len(JOINT_NAMES))):
            v = JOINT.unpack_from(buf, at + joints_offset + j * joint_size)
            joints.append({"name": JOINT_NAMES[j], "pos": list(v[0:3]), "rot": list(v[3:7]),
                           "local_rot": list(v[7:11]), "observed": bool(observed >> j & 1)})
        return {"person": person, "tracked": bool(flags & 1), "markers_used": used,
                "residual_m": residual, "joints": joints}
    if kind == SECTION_HAND_POSES:
        v = HAND.unpack_from(buf, at)
        person, side, flags, valid, time_ns, confidence = v[0:6]
        if side >= len(HAND_SIDES):
            raise WireError(f"offset {at + 2}: hand side {side}")
        landmarks = [list(v[9 + 3 * i:12 + 3 * i]) if valid >> i & 1 else None
                     for i in range(21)]
        return {"person": person, "side": HAND_SIDES[side], "time_ns": time_ns,
                "confidence": confidence,
                "centre": list(v[6:9]) if flags & 1 else None,
                "landmark_valid": valid, "landmarks": landmarks}
    if kind == SECTION_EVENTS:
        (etype, hand, person, t_ns, t_start, t_end, score, angle, lead, same,
         name, target) = EVENT.unpack_from(buf, at)
        if hand >= len(HAND_SIDES):
            raise WireError(f"offset {at + 2}: event hand {hand}")
        return {"type": EVENT_TYPES[etype] if etype < len(EVENT_TYPES) else etype,
                "hand": HAND_SIDES[hand], "person": person, "t_ns": t_ns,
                "t_start_ns": t_start, "t_end_ns": t_end, "score": score,
                "gaze_hand_angle_rad": _nan_to_none(angle), "gaze_lead_ms": _nan_to_none(lead),
                "same_target": same, "name": _name(name, at + 48),
                "target": _name(target, at + 112)}
    if kind == SECTION_CAMERA_STATUS:
        state, frames, dropped, errors = CAMERA_STATUS.unpack_from(buf, at)
        return {"state": CAMERA_STATES[state] if state < len(CAMERA_STATES) else state,
                "frames": frames, "dropped": dropped, "errors": errors}
    return None


STREAM_SECTIONS = {SECTION_RIGID_BODIES: ("rigid_bodies", RIGID.size),
                   SECTION_SKELETONS: ("skeletons", 944),
                   SECTION_HAND_POSES: ("hands", HAND.size),
                   SECTION_EVENTS: ("events", EVENT.size),
                   SECTION_CAMERA_STATUS: ("camera_status", CAMERA_STATUS.size)}


def decode_frame(buf):
    """Decode one v1 frame message into a dict. Raises WireError on malformed input."""
    n = len(buf)
    if n < HEADER.size:
        raise WireError(f"offset {n}: message of {n} bytes is shorter than the header")
    (magic, version, flags, header_size, camera_count, section_count, table_offset,
     total_length, _reserved, frame, capture_ns, solved_ns, publish_ns) = HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise WireError("offset 0: bad magic (not a Kinema frame)")
    if version != VERSION:
        raise WireError(f"offset 4: version {version}, this decoder reads {VERSION}")
    if total_length != n:
        raise WireError(f"offset 16: total_length {total_length} but {n} bytes received")
    if header_size < HEADER.size or camera_count > MAX_CAMERAS:
        raise WireError("offset 8: bad header_size or camera_count")
    if header_size + 2 * camera_count > table_offset:
        raise WireError("offset 14: table_offset overlaps the observation counts")
    table_end = table_offset + ENTRY.size * section_count
    if table_end > n:
        raise WireError(f"offset {table_offset}: section table runs past the end")
    counts = list(struct.unpack_from(f"<{camera_count}H", buf, header_size))
    markers = []
    observations = []
    streams = {}
    for s in range(section_count):
        at = table_offset + s * ENTRY.size
        kind, record_size, count, offset, length = ENTRY.unpack_from(buf, at)
        if offset < table_end or offset > n or length > n - offset:
            raise WireError(f"offset {at}: section {s} outside the message")
        if kind == SECTION_OBSERVATIONS_2D:
            if record_size < OBS2D.size or count * record_size != length:
                raise WireError(f"offset {at}: inconsistent 2D observations section")
            for i in range(count):
                x, y, area, camera, _flags = OBS2D.unpack_from(buf, offset + i * record_size)
                observations.append({"camera": camera, "x": x, "y": y, "area_px": area})
            continue
        if kind in STREAM_SECTIONS:
            key, minimum = STREAM_SECTIONS[kind]
            if key in streams:
                raise WireError(f"offset {at}: second {key} section")
            if record_size < minimum or count * record_size != length:
                raise WireError(f"offset {at}: inconsistent {key} section")
            streams[key] = [_decode_record(kind, buf, offset + i * record_size, record_size)
                            for i in range(count)]
            continue
        if kind != SECTION_MARKERS:
            continue  # a stream this decoder does not know: skip it (the extension rule)
        if record_size < MARKER.size or count * record_size != length:
            raise WireError(f"offset {at}: inconsistent markers section")
        for i in range(count):
            mid, x, y, z, residual, views, _flags = MARKER.unpack_from(buf, offset + i * record_size)
            markers.append({"id": mid, "x": x, "y": y, "z": z,
                            "residual_px": residual, "views": views})
    result = {"frame": frame, "capture_time_ns": capture_ns, "solved_time_ns": solved_ns,
              "publish_time_ns": publish_ns, "flags": flags,
              "observation_count": counts, "markers": markers, "observations": observations}
    result.update(streams)  # only the sections present: absent != empty
    return result


def main():
    parser = argparse.ArgumentParser(description="Print Kinema frames from a ZeroMQ PUB.")
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5555",
                        help="kinemad's PUB endpoint (default %(default)s)")
    parser.add_argument("--topic", default="frame", choices=WIRE_TOPICS + JSON_TOPICS,
                        help="topic to subscribe to (default %(default)s)")
    parser.add_argument("--latest", metavar="ENDPOINT",
                        help="connect to kinemad's latest-frame endpoint instead "
                             "(transport.zmq.latest_endpoint: single-part frames, ZMQ_CONFLATE: "
                             "only the newest frame is ever read)")
    parser.add_argument("--count", type=int, default=0,
                        help="exit after N frames (default 0: run until Ctrl-C)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per frame on stdout")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="give up (exit 1) after this many seconds without a frame")
    args = parser.parse_args()

    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    if args.latest:
        # Set before connect: keep only the newest message in our receive queue.
        sub.setsockopt(zmq.CONFLATE, 1)
        sub.connect(args.latest)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
    else:
        sub.connect(args.endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, args.topic.encode())
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)

    received = 0
    try:
        while args.count <= 0 or received < args.count:
            if not poller.poll(args.timeout * 1000 if args.timeout > 0 else None):
                print(f"no frame within {args.timeout} s", file=sys.stderr)
                return 1
            parts = sub.recv_multipart()
            # time.monotonic_ns() is CLOCK_MONOTONIC on Linux: the clock of capture_time_ns,
            # so the difference is the end-to-end latency when on the same host.
            now_ns = time.monotonic_ns()
            if args.latest:
                parts = [b"frame"] + parts  # the latest endpoint sends the payload alone
            if len(parts) != 2:
                print(f"unexpected message with {len(parts)} parts", file=sys.stderr)
                return 2
            topic = parts[0].decode(errors="replace")
            if topic in JSON_TOPICS:
                received += 1
                print(parts[1].decode(errors="replace"), flush=True)
                continue
            try:
                frame = decode_frame(parts[1])
            except WireError as error:
                print(f"malformed frame: {error}", file=sys.stderr)
                return 2
            frame["topic"] = topic
            frame["latency_ns"] = now_ns - frame["capture_time_ns"]
            received += 1
            if args.json:
                print(json.dumps(frame), flush=True)
            else:
                print(f"frame {frame['frame']} capture {frame['capture_time_ns']} ns "
                      f"latency {frame['latency_ns'] / 1e3:.0f} us "
                      f"observations {frame['observation_count']} "
                      f"markers {len(frame['markers'])} 2D {len(frame['observations'])} "
                      f"rigid {len(frame.get('rigid_bodies', []))} "
                      f"skeletons {len(frame.get('skeletons', []))} "
                      f"hands {len(frame.get('hands', []))} "
                      f"events {len(frame.get('events', []))}")
                for b in frame.get("rigid_bodies", []):
                    print(f"  rigid {b['id']:5d}  {'tracked' if b['tracked'] else 'lost   '} "
                          f"pos {b['pos'][0]:+.4f} {b['pos'][1]:+.4f} {b['pos'][2]:+.4f} m")
                for k in frame.get("skeletons", []):
                    hips = k["joints"][0]["pos"] if k["joints"] else [0, 0, 0]
                    seen = sum(1 for j in k["joints"] if j["observed"])
                    print(f"  skeleton person {k['person']} "
                          f"{'tracked' if k['tracked'] else 'lost'} hips "
                          f"{hips[0]:+.4f} {hips[1]:+.4f} {hips[2]:+.4f} m, "
                          f"{seen}/{len(k['joints'])} joints observed")
                for e in frame.get("events", []):
                    print(f"  event {e['type']} {e['name'] or e['target']} person {e['person']} "
                          f"{e['hand']} score {e['score']:.2f}")
                for m in frame["markers"]:
                    print(f"  id {m['id']:5d}  x {m['x']:+.4f}  y {m['y']:+.4f}  "
                          f"z {m['z']:+.4f} m  residual {m['residual_px']:.3f} px  "
                          f"views {m['views']}")
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
        context.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())

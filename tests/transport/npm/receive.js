// Receives Kinema's OSC output with the npm `osc` package (a parser we did not write) and
// checks the type of every argument of every VMC and /kinema message.
//   node receive.js PORT ROUNDS        prints a JSON summary; exit 0 when all checks pass
"use strict";
const osc = require("osc");

const port = parseInt(process.argv[2], 10);
const rounds = parseInt(process.argv[3], 10);
const BONES = new Set(["Hips", "LeftUpperLeg", "RightUpperLeg", "LeftLowerLeg", "RightLowerLeg",
  "LeftFoot", "RightFoot", "Spine", "Chest", "Neck", "Head", "LeftShoulder", "RightShoulder",
  "LeftUpperArm", "RightUpperArm", "LeftLowerArm", "RightLowerArm", "LeftHand", "RightHand",
  "LeftToes", "RightToes", "LeftEye", "RightEye", "Jaw", "UpperChest"]);
for (const side of ["Left", "Right"])
  for (const finger of ["Thumb", "Index", "Middle", "Ring", "Little"])
    for (const part of ["Proximal", "Intermediate", "Distal"]) BONES.add(side + finger + part);

// Expected type tags per address (osc.js with metadata:true reports each argument's type).
const TYPES = {
  "/VMC/Ext/OK": "iiii",
  "/VMC/Ext/T": "f",
  "/VMC/Ext/Root/Pos": "sfffffff",
  "/VMC/Ext/Bone/Pos": "sfffffff",
  "/kinema/gesture": "sisf",
  "/kinema/frame": "hhi",
  "/kinema/marker": "iffffi",
};
const counts = {};
const errors = [];
const bonesSeen = new Set();
let loaded = 0, notLoaded = 0;

function check(msg) {
  const types = msg.args.map((a) => a.type).join("");
  counts[msg.address] = (counts[msg.address] || 0) + 1;
  const want = TYPES[msg.address];
  if (want === undefined) errors.push(`unexpected address ${msg.address}`);
  else if (types !== want) errors.push(`${msg.address}: types ${types}, expected ${want}`);
  const v = msg.args.map((a) => a.value);
  switch (msg.address) {
    case "/VMC/Ext/OK":
      if (v[0] === 1) loaded++; else if (v[0] === 0) notLoaded++;
      else errors.push(`/VMC/Ext/OK loaded=${v[0]}`);
      if (v[1] !== 3 || v[2] !== 0) errors.push(`/VMC/Ext/OK calibration ${v[1]} ${v[2]}`);
      break;
    case "/VMC/Ext/Root/Pos":
      if (v[0] !== "root") errors.push(`root name ${v[0]}`);
      break;
    case "/VMC/Ext/Bone/Pos": {
      if (!BONES.has(v[0])) errors.push(`unknown bone ${v[0]}`);
      bonesSeen.add(v[0]);
      const q = v.slice(4, 8);
      const norm = Math.sqrt(q.reduce((s, x) => s + x * x, 0));
      if (Math.abs(norm - 1) > 1e-3) errors.push(`${v[0]}: quaternion norm ${norm}`);
      if (!v.slice(1).every(Number.isFinite)) errors.push(`${v[0]}: non-finite value`);
      break;
    }
    case "/kinema/gesture":
      if (v[0] !== "swipe_left" || v[2] !== "right" || Math.abs(v[3] - 0.5) > 1e-6)
        errors.push(`/kinema/gesture values ${JSON.stringify(v)}`);
      break;
  }
}

function walk(packet) {
  if (packet.packets) packet.packets.forEach(walk);
  else check(packet);
}

const udp = new osc.UDPPort({ localAddress: "127.0.0.1", localPort: port, metadata: true });
udp.on("osc", (packet) => walk(packet));
udp.on("error", (e) => errors.push(`osc.js error: ${e.message}`));
udp.on("ready", () => console.error("ready"));
udp.open();

function finish() {
  udp.close();
  const okCounts = (counts["/VMC/Ext/Bone/Pos"] || 0) >= rounds * 55 * 0.9 &&
    loaded >= rounds * 0.9 && notLoaded >= rounds * 0.9 &&
    (counts["/kinema/gesture"] || 0) >= rounds * 0.9 &&
    (counts["/kinema/frame"] || 0) >= rounds * 0.9 && bonesSeen.size === 55;
  if (!okCounts) errors.push("too few messages (UDP loss on loopback is not expected)");
  console.log(JSON.stringify({ counts, loaded, notLoaded, bones: bonesSeen.size,
    errors: errors.slice(0, 10), error_count: errors.length }));
  process.exit(errors.length ? 1 : 0);
}
let last = Date.now();
udp.on("osc", () => { last = Date.now(); });
const start = Date.now();
setInterval(() => {
  const done = (counts["/kinema/frame"] || 0) >= rounds;
  if ((done && Date.now() - last > 300) || Date.now() - start > 20000) finish();
}, 50);

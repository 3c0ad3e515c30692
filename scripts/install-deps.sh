#!/usr/bin/env bash
# Install every Debian 12 package Kinema needs to build, test and run its demo.
# Idempotent: packages already present are skipped by apt. Run as root or with sudo.
set -euo pipefail

PACKAGES=(
  # toolchain and build system
  gcc g++ meson ninja-build pkg-config git
  # libraries Kinema links
  libopencv-dev libusb-1.0-0-dev libzmq3-dev liblo-dev libyaml-dev libfreenect-dev
  # tests: unit test framework, OSC command-line peers, Python peers (pyzmq, liblo)
  libcmocka-dev liblo-tools python3 python3-zmq python3-liblo
  # sanitizer runtime for the ASan/UBSan build (gcc's own) and clang for the fuzz engine
  libasan8 libubsan1
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: not root and no sudo; install these packages yourself:" >&2
    echo "  ${PACKAGES[*]}" >&2
    exit 1
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js + npm run the OSC/VMC peer test with the npm `osc` package. Some Debian 12 images
# carry a Node.js build that bundles npm and conflicts with Debian's separate npm package:
# take whatever node and npm are there, and install Debian's only when they are missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present (and node $(node --version), npm $(npm --version))"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

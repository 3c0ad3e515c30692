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
  libcmocka-dev liblo-tools python3 python3-zmq python3-liblo nodejs npm
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
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# Obtain the Mosquitto broker test suite from Debian's source package
# `mosquitto` (bookworm: 2.0.11-1.2+deb12u2) with apt only, and unpack it.
#
#   test/interop/fetch-suite.sh [DEST]     (root; DEST default /var/cache/threadline-interop)
#
# Prints the suite directory (DEST/mosquitto-<version>/test) on its last line.
# Installs what is missing: python3 (the suite is Python 3, standard library
# only) and dpkg-dev (dpkg-source applies Debian's patches to the tests).
# Adds a deb-src entry for Debian's main archive when none is configured.
set -euo pipefail

DEST=${1:-${INTEROP_CACHE:-/var/cache/threadline-interop}}
mkdir -p "$DEST"

existing=$(ls -d "$DEST"/mosquitto-*/test/broker 2>/dev/null | head -n1 || true)
if [[ -n "$existing" && -f "$existing/../mosq_test.py" ]]; then
  dirname "$existing"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log=$DEST/fetch.log
: > "$log"

need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v dpkg-source >/dev/null 2>&1 || need+=(dpkg-dev)

if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # same archive and suites as the binary entries of a stock Debian 12 image
  cat > /etc/apt/sources.list.d/threadline-interop-src.sources <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi

apt-get update >>"$log" 2>&1
if ((${#need[@]})); then
  apt-get install -y --no-install-recommends "${need[@]}" >>"$log" 2>&1
fi

cd "$DEST"
# downloads mosquitto_*.dsc, .orig.tar.gz, .debian.tar.xz and runs dpkg-source -x
if ! apt-get source mosquitto >>"$log" 2>&1; then
  echo "fetch-suite: 'apt-get source mosquitto' failed, see $log" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
suite=$(ls -d "$DEST"/mosquitto-*/test/broker | head -n1)
dirname "$suite"

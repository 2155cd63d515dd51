#!/usr/bin/env bash
# System packages the tests use: chromium (dashboard browser test) and tmux (monitor test).
# Installed from Debian only when missing; needs root or sudo the first time.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "Installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "cannot install ${missing[*]}: run as root or install them with apt-get" >&2
    exit 1
fi
# The package lists are refreshed only when the cached ones cannot serve the install.
"${as_root[@]}" apt-get install -y -q "${missing[@]}" >/dev/null ||
    { "${as_root[@]}" apt-get update -q >/dev/null &&
      "${as_root[@]}" apt-get install -y -q "${missing[@]}" >/dev/null; }

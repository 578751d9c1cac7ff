#!/usr/bin/env bash
# Install stemstream and everything it needs on a fresh Debian machine (run as root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! dpkg -s libportaudio2 jackd2 ffmpeg fluidsynth fluid-soundfont-gm timgm6mb-soundfont libsndfile1 tmux >/dev/null 2>&1; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    libportaudio2 jackd2 ffmpeg fluidsynth fluid-soundfont-gm timgm6mb-soundfont libsndfile1 tmux
fi
# torch pinned to 2.13.0: on this project's machines pip takes that version's CPU build from a local
# file (no CPU index is selected: elsewhere PyPI's 2.13.0 may be a CUDA build); an unpinned torch
# would pull a multi-GB CUDA build
python3 -m pip install -q "torch==2.13.0"
python3 -m pip install -q -e ".[test,ray]"  # ray: the catalogue tests run a local Ray instance
# pyenv puts console scripts on PATH through shims, made by a rehash
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi

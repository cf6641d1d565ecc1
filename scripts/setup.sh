#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system packages, then one pinned virtual
# environment keyed by the lock file, so that repeated clones (and CI) reuse it.
# Source it (`. scripts/setup.sh`) or run it; afterwards .venv points at the env.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

# Debian packages: ffmpeg (audio decoding for `datasets`/torchcodec), espeak-ng
# (eSpeak engine and Coqui's phonemizer), wordnet-base (the embedded corpus).
apt_packages=(ffmpeg espeak-ng wordnet-base)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python environment, one per lock-file content.
python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null 2>&1 || python_bin=python3
lock_hash="$(cat requirements/lock.txt | sha256sum | cut -c1-12)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/saladpipe"
venv_dir="${SALADPIPE_VENV:-$cache_root/venvs/py311-$lock_hash}"
if [ ! -f "$venv_dir/.complete" ]; then
  echo "setup: creating Python environment in $venv_dir (several GB on first run)" >&2
  rm -rf "$venv_dir"
  mkdir -p "$(dirname "$venv_dir")"
  "$python_bin" -m venv "$venv_dir"
  "$venv_dir/bin/python" -m pip install -q --upgrade pip
  # torch first and pinned, so that nothing else pulls another build of it.
  "$venv_dir/bin/python" -m pip install -q "$(grep -E '^torch==' requirements/lock.txt)"
  "$venv_dir/bin/python" -m pip install -q -r requirements/lock.txt
  touch "$venv_dir/.complete"
fi
"$venv_dir/bin/python" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
ln -sfn "$venv_dir" .venv

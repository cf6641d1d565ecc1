#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system packages, then one pinned virtual
# environment keyed by the lock file, so that repeated clones (and CI) reuse it.
# Source it (`. scripts/setup.sh`) or run it; afterwards .venv points at the env.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

# Debian packages: ffmpeg (audio decoding for `datasets`/torchcodec), espeak-ng
# (eSpeak engine and Coqui's phonemizer), wordnet-base (the embedded corpus),
# chromium and chromium-driver (the audit report's headless-browser test).
apt_packages=(ffmpeg espeak-ng wordnet-base chromium chromium-driver)
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

# Dependencies: one environment per content of the lock files (lock.txt, then no-deps.txt
# without the dependencies its packages declare), shared by every clone on this
# machine (building it costs minutes and several GB; reusing it costs nothing).
python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null 2>&1 || python_bin=python3
lock_hash="$(cat requirements/lock.txt requirements/no-deps.txt | sha256sum | cut -c1-12)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/saladpipe"
deps_dir="${SALADPIPE_VENV:-$cache_root/venvs/py311-$lock_hash}"
if [ ! -f "$deps_dir/.complete" ]; then
  echo "setup: creating the dependency environment in $deps_dir (several GB on first run)" >&2
  rm -rf "$deps_dir"
  mkdir -p "$(dirname "$deps_dir")"
  "$python_bin" -m venv "$deps_dir"
  "$deps_dir/bin/python" -m pip install -q --upgrade pip
  # torch first and pinned, so that nothing else pulls another build of it.
  "$deps_dir/bin/python" -m pip install -q "$(grep -E '^torch==' requirements/lock.txt)"
  "$deps_dir/bin/python" -m pip install -q -r requirements/lock.txt
  "$deps_dir/bin/python" -m pip install -q --no-deps -r requirements/no-deps.txt
  touch "$deps_dir/.complete"
fi

# This clone's own small environment: the shared dependencies on its path, and this
# checkout installed in editable mode, so two clones never point at each other's code.
if [ ! -x .venv/bin/python ] || [ -L .venv ] || [ "$(cat .venv/.deps 2>/dev/null)" != "$deps_dir" ]; then
  rm -rf .venv
  "$deps_dir/bin/python" -m venv --without-pip .venv
  own_site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  deps_site="$("$deps_dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "import site; site.addsitedir('$deps_site')" > "$own_site/_saladpipe_dependencies.pth"
  for tool in ruff mypy lint-imports; do ln -sf "$deps_dir/bin/$tool" ".venv/bin/$tool"; done
  echo "$deps_dir" > .venv/.deps
fi
install_log="$(mktemp)"
if ! .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . >"$install_log" 2>&1; then
  cat "$install_log" >&2
  exit 1
fi
rm -f "$install_log"

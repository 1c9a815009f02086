#!/usr/bin/env bash
# Sets up everything SDME needs on a fresh machine (Python 3.11 + pip, nothing else), then prints
# the venv's bin folder on stdout (all other output goes to stderr). Safe to re-run: cheap when done.
#
#   - system packages: FFmpeg libraries (torchaudio 2.11 decodes through torchcodec, which needs
#     them), espeak-ng (regenerating the bundled sample corpus) and Chromium with chromium-driver (the
#     browser tests of the leaderboard page and the annotation app), via apt-get when missing;
#   - a virtual environment outside the clone, keyed by a hash of requirements.lock, created once
#     and reused by every clone on this machine (SDME_VENV overrides its location);
#   - this clone installed into it in editable mode, so `sdme` runs this checkout.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[bootstrap] %s\n' "$*" >&2; }

need_apt=()
python3 - <<'PY' 2>/dev/null || need_apt+=(ffmpeg)
import ctypes.util, sys
sys.exit(0 if ctypes.util.find_library("avcodec") and ctypes.util.find_library("avformat") else 1)
PY
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
    log "installing system packages: ${need_apt[*]}"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${need_apt[@]}" >&2
  else
    log "missing system packages: ${need_apt[*]} — install them with your package manager"
    log "(FFmpeg's shared libraries are required for audio decoding; espeak-ng only to regenerate"
    log " the sample corpus; chromium and chromium-driver only for the browser tests)"
    exit 1
  fi
fi

lock="$repo/requirements.lock"
key="$(cat "$lock" | sha256sum | cut -c1-12)"
venv="${SDME_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sdme/venvs/py311-$key}"
if [ ! -f "$venv/.sdme-complete" ]; then
  log "creating $venv (first run on this machine: a few minutes)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q -r "$lock" >&2
  touch "$venv/.sdme-complete"
fi
# Editable install of this clone (re-points the shared venv at the clone being run), skipped when
# the venv already runs this clone with this pyproject.toml.
stamp="$(sha256sum "$repo/pyproject.toml" | cut -c1-12) $repo"
if [ "$(cat "$venv/.sdme-editable" 2>/dev/null)" != "$stamp" ] \
   || ! (cd / && "$venv/bin/python" -c "import sdme" 2>/dev/null); then
  if ! "$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$repo" \
       >"$venv/.sdme-editable.log" 2>&1; then
    cat "$venv/.sdme-editable.log" >&2
    exit 1
  fi
  echo "$stamp" > "$venv/.sdme-editable"
fi
echo "$venv/bin"

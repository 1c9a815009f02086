#!/usr/bin/env bash
# The main job on the embedded default: fetch the bundled sample corpus and validate it.
# Usage: bash scripts/quickstart.sh   (SDME_DATA_DIR chooses where data goes; default ~/.cache/sdme)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$(bash "$repo/scripts/bootstrap.sh")"
export PATH="$bin:$PATH"
sdme download
sdme validate sample

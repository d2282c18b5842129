#!/usr/bin/env bash
# Runs every test. Installs what is missing first, so it works on a fresh clone on its own.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
npx tsc --noEmit -p .
npx vitest run "$@"

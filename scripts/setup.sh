#!/usr/bin/env bash
# Installs everything Stasis needs on this machine, idempotently: npm dependencies, system packages
# (CRIU 4.2, runc, skopeo, umoci, docker-registry, PostgreSQL for the external-database tests), and
# the compiled SDK for app code that runs on plain Node.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

stamp=node_modules/.stasis-install-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  echo "setup: installing npm dependencies" >&2
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >&2; else npm install --no-audit --no-fund >&2; fi
  touch "$stamp"
fi

if [ -x scripts/setup-system.sh ] || [ -f scripts/setup-system.sh ]; then
  bash scripts/setup-system.sh
fi

node scripts/build-dist.mjs

# The example's app code imports `stasis/sdk` through a file: dependency on this package.
if [ ! -e examples/movie-tickets/node_modules/stasis ]; then
  npm install --prefix examples/movie-tickets --no-audit --no-fund >&2
fi

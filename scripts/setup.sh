#!/usr/bin/env bash
# Installs everything Stasis needs on this machine, idempotently: npm dependencies, system packages
# (CRIU 4.2, runc, skopeo, umoci, docker-registry, PostgreSQL for the external-database tests), and
# the compiled SDK for app code that runs on plain Node.
set -eEuo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
SETUP_LOG_PREFIX=setup
source scripts/setup-steps.sh

stamp=node_modules/.stasis-install-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  step "installing npm dependencies (npm ci)"
  log "installing npm dependencies"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >&2; else npm install --no-audit --no-fund >&2; fi
  touch "$stamp"
fi

step "installing system packages (scripts/setup-system.sh)"
if [ -x scripts/setup-system.sh ] || [ -f scripts/setup-system.sh ]; then
  bash scripts/setup-system.sh
fi

step "building the compiled SDK (scripts/build-dist.mjs)"
node scripts/build-dist.mjs

# The example's app code imports `stasis/sdk` through a file: dependency on this package.
step "installing the movie-tickets example's dependencies"
if [ ! -e examples/movie-tickets/node_modules/stasis ]; then
  npm install --prefix examples/movie-tickets --no-audit --no-fund >&2
fi

#!/usr/bin/env bash
# The main job: install what is missing, then run Stasis on its embedded defaults (PostgreSQL, OCI
# layout image store, CRIU checkpoints) with the movie-tickets example and its stand-in services.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"

cd "$root/examples/movie-tickets"
rm -f .env
# The stand-in services (npx → tsx → node) run in their own process group, so stopping them ends
# every process of theirs, however `stasis dev` ends: Ctrl-C, a failure, or on its own.
setsid npx tsx services/serve.ts &
services=$!
stop_services() {
  kill -TERM -- "-$services" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 -- "-$services" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$services" 2>/dev/null || true
}
trap stop_services EXIT
for _ in $(seq 1 300); do [ -s .env ] && break; sleep 0.1; done
echo "Try a purchase in another terminal:  cd examples/movie-tickets && npx tsx src/buy-ticket.ts" >&2
node "$root/cli/bin.mjs" dev "$@"

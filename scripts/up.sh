#!/usr/bin/env bash
# The main job: install what is missing, then run Stasis on its embedded defaults (PostgreSQL, OCI
# layout image store, CRIU checkpoints) with the movie-tickets example and its stand-in services.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"

cd "$root/examples/movie-tickets"
rm -f .env
npx tsx services/serve.ts &
services=$!
trap 'kill $services 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s .env ] && break; sleep 0.1; done
echo "Try a purchase in another terminal:  cd examples/movie-tickets && npx tsx src/buy-ticket.ts" >&2
node "$root/cli/bin.mjs" dev "$@"

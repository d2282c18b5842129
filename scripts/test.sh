#!/usr/bin/env bash
# Runs every test. Installs what is missing first, so it works on a fresh clone on its own.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh

# Two vitest processes side by side: "heavy" files (CRIU, runc, tasks, mounts) one at a time, and
# "light" ones (no mount; no task, or only sandboxed ones: test/support/test-groups.ts) beside them.
# Light lines are prefixed.
# A stop of the whole suite (every process of its group stopped at once) is reported, with its sender where
# the kernel's tracing allows, and continued: scripts/stop-watch.sh, in a process group of its own.
setsid bash scripts/stop-watch.sh "$(ps -o pgid= $$ | tr -d ' ')" &
stop_watch=$!
trap 'kill "$stop_watch" 2>/dev/null || true' EXIT

results_dir="$root/.stasis"
mkdir -p "$results_dir"
rm -f "$results_dir"/test-results*.json "$results_dir"/type-check.log
# The type check runs beside the tests (~20 s of the suite's time when it ran first); a type error fails the run all the same.
( npx tsc --noEmit -p . > "$results_dir/type-check.log" 2>&1 ) &
type_check=$!
run_group() {
  npx vitest run --project "$1" --passWithNoTests --reporter=default --reporter=json --outputFile.json="$results_dir/test-results-$1.json" "${@:2}"
}
( set +e; run_group light "$@" 2>&1 | sed -u 's/^/light │ /'; exit "${PIPESTATUS[0]}" ) &
light=$!
status=0
run_group heavy "$@" || status=$?
wait "$light" || status=$?

# One plain closing line: "N passed, N failed" (and skipped), over both groups.
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0, missing = [];
  for (const file of process.argv.slice(1)) {
    if (!fs.existsSync(file)) { missing.push(file); continue; }
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : "") + (missing.length ? ` (no results from ${missing.join(", ")})` : ""));
' "$results_dir/test-results-heavy.json" "$results_dir/test-results-light.json"
if ! wait "$type_check"; then
  status=1
  echo "type check failed (npx tsc --noEmit -p .):"
  cat "$results_dir/type-check.log"
fi
exit "$status"

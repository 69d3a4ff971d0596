#!/usr/bin/env bash
# The one command that installs everything the tests need and runs them all.
# `.ci/run` calls exactly this (as `npm test` from a fresh clone).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
# Native addons compile through ccache: better-sqlite3 builds SQLite from source when its prebuilt
# binary cannot be downloaded (~90 s of the install); a second run on this machine reuses the objects.
# CCACHE_BASEDIR makes the cache independent of where the checkout is.
if command -v ccache >/dev/null 2>&1; then
  export CC="ccache ${CC:-cc}" CXX="ccache ${CXX:-g++}" CCACHE_BASEDIR="$PWD"
fi
# npm ci installs exactly the lockfile; its `prepare` hook builds the packages.
npm ci --no-audit --no-fund
# Both are single-threaded and type-check the whole tree: run them side by side.
npm run typecheck & typecheck=$!
npm run lint & lint=$!
wait "$typecheck"
wait "$lint"

# Node 20's test runner takes no globs: list the files.
mapfile -t files < <(find packages -path '*/node_modules' -prune -o -path '*/test/*' -name '*.test.ts' -print | sort)
echo "running ${#files[@]} test files"
# dist/ was just built from this tree: tests start the built CLI and keyholder (packages/server/test/built.ts).
export KEYWARD_RUN_BUILT=1
node --conditions=source --import tsx --test --test-concurrency=2 --test-reporter=spec "${files[@]}"

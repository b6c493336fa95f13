#!/usr/bin/env bash
# bench-compare.sh REF [bench flags...] — the speed effect of a change before it lands.
# Builds the bench of git revision REF (a git worktree in a temporary directory) and
# the bench of the working tree as it is (uncommitted changes included), then runs the
# ztopo side of each scenario with the two alternately and prints new/ref ratios.
#   ./scripts/bench-compare.sh main -only 'pipeline|fanout' -rounds 5
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 REF [bench flags: -only REGEX -rounds N -quick -json FILE]" >&2; exit 2; }
ref=$1; shift
go=${GO:-go}
top=$(git rev-parse --show-toplevel)
git -C "$top" rev-parse --verify -q "$ref^{commit}" >/dev/null || { echo "bench-compare: unknown revision $ref" >&2; exit 2; }
tmp=$(mktemp -d)
cleanup() {
  git -C "$top" worktree remove --force "$tmp/ref" 2>/dev/null || true
  git -C "$top" worktree prune
  rm -rf "$tmp"
}
trap cleanup EXIT
git -C "$top" worktree add -q --detach "$tmp/ref" "$ref"
echo "bench-compare: ref $(git -C "$tmp/ref" log -1 --format='%h %s')" >&2
(cd "$tmp/ref" && "$go" build -o "$tmp/bench-ref" ./bench)
(cd "$top" && "$go" build -o "$tmp/bench-new" ./bench)
cd "$top"
"$tmp/bench-new" -compare "$tmp/bench-ref" -compare-dir "$tmp/ref" "$@"

#!/usr/bin/env bash
# Re-runnable localisation evaluation.
#
# For every case in eval/cases.json: get the repository (cached under eval/cache/, which is
# gitignored), extract the tree at the commit *before* the fix, run the PatchPilot localiser
# and the plain-BM25 baseline on the issue text, and report hit@1/3/5/10 for both.
#
#   eval/run.sh                       # clones from github.com
#   EVAL_MIRROR_DIR=/path eval/run.sh # uses local clones at $EVAL_MIRROR_DIR/<owner>+<name>/repo
#
# Needs: git, tar, python3 (only to read the JSON case list), cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=eval/cases.json
CACHE=eval/cache
mkdir -p "$CACHE/repos" "$CACHE/trees"

python3 - "$CASES" <<'PY' > "$CACHE/cases.tsv"
import json, sys
for c in json.load(open(sys.argv[1])):
    print(c["id"], c["repo"], c["base_commit"], sep="\t")
PY

while IFS=$'\t' read -r id repo base; do
  key="${repo/\//+}"
  git_dir="$CACHE/repos/$key.git"
  if [ ! -d "$git_dir" ]; then
    if [ -n "${EVAL_MIRROR_DIR:-}" ] && [ -d "$EVAL_MIRROR_DIR/$key/repo" ]; then
      git clone --quiet --bare "$EVAL_MIRROR_DIR/$key/repo" "$git_dir"
    else
      git clone --quiet --bare "https://github.com/$repo.git" "$git_dir"
    fi
  fi
  tree="$CACHE/trees/$id"
  if [ ! -d "$tree" ]; then
    mkdir -p "$tree.tmp"
    git --git-dir="$git_dir" archive "$base" | tar -x -C "$tree.tmp"
    mv "$tree.tmp" "$tree"
  fi
done < "$CACHE/cases.tsv"

if [ -n "${EVAL_PREPARE_ONLY:-}" ]; then exit 0; fi
cargo run --quiet --release --example localize_eval -- "$CASES" "$CACHE/trees" "$@"

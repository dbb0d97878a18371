#!/usr/bin/env bash
# Times Porcupine on the histories the lincheck benchmark exports, for a side-by-side comparison.
#
#   PORCUPINE_SRC=/path/to/porcupine checker/benches/porcupine/run.sh [GOMAXPROCS]
#
# PORCUPINE_SRC is a checkout of github.com/anishathalye/porcupine (not vendored here: the Go
# module proxy is not reachable from this project's machines, and Debian does not package it).
# Needs Go (Debian: golang-go). Exports the histories to $LINCHECK_EXPORT_DIR (default
# /tmp/lincheck-bench) first by running the Rust benchmark's setup.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${PORCUPINE_SRC:?set PORCUPINE_SRC to a porcupine checkout}"
export LINCHECK_EXPORT_DIR="${LINCHECK_EXPORT_DIR:-/tmp/lincheck-bench}"
mkdir -p "$LINCHECK_EXPORT_DIR"
(cd "$here/../../.." && cargo bench -p checker --bench lincheck -- --list >/dev/null)
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
cp "$here/main.go" "$here/go.mod" "$build/"
cd "$build"
go mod edit -replace "github.com/anishathalye/porcupine=$PORCUPINE_SRC"
GOFLAGS=-mod=mod GOPROXY=off go build -o porcupine-bench .
export GOMAXPROCS="${1:-2}"
for model in kv register stock; do
  files=("$LINCHECK_EXPORT_DIR"/*."$model".jsonl)
  [ -e "${files[0]}" ] || continue
  ./porcupine-bench -model "$model" -initial 50 "${files[@]}"
done

#!/usr/bin/env bash
# Bounded fuzz campaigns of the scim-core targets (scim-core/fuzz), on stable Rust.
#
# Why not `cargo fuzz`: it needs nightly (-Zsanitizer=address). The coverage instrumentation
# libFuzzer needs is available on stable as -C flags (the same ones cargo-fuzz passes), so the
# targets are built with plain cargo and run as libFuzzer binaries, coverage-guided, without
# AddressSanitizer (the targets are safe Rust: what they look for is panics, stack overflows,
# runaway memory and wrong error kinds, which libFuzzer reports on its own).
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   FUZZ_SECONDS (default 10) bounds each target; CI runs the default. Longer campaigns:
#   scripts/fuzz.sh 600            # ten minutes per target
#   FUZZ_UPDATE_CORPUS=1 scripts/fuzz.sh 600 filter   # and merge new inputs into the corpus
# A crash writes its input to scim-core/fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/../scim-core/fuzz"
seconds="${1:-${FUZZ_SECONDS:-10}}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(filter patch_path patch_body request_body)
fi
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-../../target/fuzz-stable}"
# With an explicit --target, RUSTFLAGS reach the targets only, not build scripts or proc macros.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --quiet --bins --target "$host"
bin="$CARGO_TARGET_DIR/$host/release"
for t in "${targets[@]}"; do
  corpus="corpus/$t"
  scratch="$(mktemp -d)"
  mkdir -p "$corpus" "artifacts/$t"
  echo "fuzz: $t for ${seconds}s (corpus $(ls "$corpus" | wc -l) inputs)"
  log="$scratch.log"
  status=0
  "$bin/$t" "$scratch" "$corpus" \
    -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ERROR)|panicked" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz: $t failed (exit $status); the input is in scim-core/fuzz/artifacts/$t/" >&2
    exit 1
  fi
  rm -f "$log"
  if [ "${FUZZ_UPDATE_CORPUS:-0}" = 1 ]; then
    "$bin/$t" -merge=1 "$corpus" "$scratch" >/dev/null 2>&1
  fi
  rm -rf "$scratch"
done

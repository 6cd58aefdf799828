#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain: AFL++ from Debian (afl-fuzz and its runtime
# afl-compiler-rt.o) drives targets that rustc instruments with SanitizerCoverage
# (trace-pc-guard), the mode AFL++ supports for any compiler. cargo-fuzz needs nightly and is
# not used. Each target runs for FUZZ_SECONDS (default 60); any crash or hang fails the run,
# and the inputs that caused it are left in target/fuzz/findings/TARGET/default/.
#
#   .ci/fuzz.sh                      # all targets, 60 s each
#   FUZZ_SECONDS=600 .ci/fuzz.sh pox # one target, longer
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

seconds=${FUZZ_SECONDS:-60}
targets=("$@")
((${#targets[@]})) || targets=(pox microsoft365 config certificate redirect)

if ! command -v afl-fuzz >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends afl++
fi
runtime=$(dirname "$(readlink -f "$(command -v afl-fuzz)")")/../lib/afl/afl-compiler-rt.o
[[ -f $runtime ]] || runtime=/usr/lib/afl/afl-compiler-rt.o
[[ -f $runtime ]] || { echo "no afl-compiler-rt.o (is afl++ installed?)" >&2; exit 2; }

# An explicit --target keeps the instrumentation out of build scripts and proc macros.
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=3 \
-C llvm-args=-sanitizer-coverage-trace-pc-guard -C llvm-args=-sanitizer-coverage-prune-blocks=0 \
-C link-arg=$runtime"
cargo build --release --locked --manifest-path fuzz/Cargo.toml --target "$host" \
    --target-dir target/fuzz

export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_AFFINITY=1 AFL_QUIET=1
failed=0
for target in "${targets[@]}"; do
    findings=target/fuzz/findings/$target
    rm -rf "$findings"
    mkdir -p "$(dirname "$findings")"
    printf '\n=== fuzz %s (%s s)\n' "$target" "$seconds"
    afl-fuzz -V "$seconds" -t 1000 -m none -i "fuzz/corpus/$target" -o "$findings" \
        -- "target/fuzz/$host/release/$target" >"$findings.log" 2>&1 || {
        tail -20 "$findings.log"
        failed=1
        continue
    }
    stats=$findings/default/fuzzer_stats
    execs=$(sed -n 's/^execs_done *: *//p' "$stats")
    paths=$(sed -n 's/^corpus_count *: *//p' "$stats")
    crashes=$(find "$findings/default/crashes" -type f ! -name README.txt | wc -l)
    hangs=$(find "$findings/default/hangs" -type f | wc -l)
    echo "$target: $execs executions, $paths inputs in the corpus, $crashes crashes, $hangs hangs"
    if ((crashes + hangs)); then
        failed=1
        ls "$findings/default/crashes" "$findings/default/hangs"
    fi
done
exit $failed

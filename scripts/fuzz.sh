#!/usr/bin/env bash
# Fuzzes the file formats the engine reads from outside (safetensors, NPY, config.json,
# vocab.json + merges.txt, tokenizer.json (and Qwen's, with its pre-tokenizer), llama2.c's model.bin
# and tokenizer.bin, GGUF (and a GGUF vocabulary alone: Gemma's scored pieces), Hugging Face
# config.json and shard index, chat templates) with libFuzzer, each for a bounded time.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 20 s, every target)
# The seed corpus in Fuzz/corpus/ is copied to a scratch directory first, so runs never change
# it; a crash leaves its input in .build-fuzz/findings/ and makes the script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors npy config gpt2 tokenizer-json qwen-tokenizer-json llama2c llama2c-tokenizer gguf gguf-vocabulary hf-config hf-index chat-template json-schema)

echo "fuzz: building lm-fuzz with -sanitize=fuzzer" >&2
LM_FUZZ=1 swift build --scratch-path .build-fuzz --product lm-fuzz --sanitize fuzzer >&2
binary=.build-fuzz/debug/lm-fuzz
findings=.build-fuzz/findings
mkdir -p "$findings"

status=0
for target in "${targets[@]}"; do
  work=$(mktemp -d)
  cp Fuzz/corpus/"$target"/* "$work"/
  log="$findings/$target.log"
  if LM_FUZZ_TARGET="$target" "$binary" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 \
       -artifact_prefix="$findings/$target-" -print_final_stats=1 "$work" >"$log" 2>&1; then
    result="no crash"
  else
    result="CRASH (input in $findings/$target-*)"
    status=1
  fi
  runs=$(awk '/stat::number_of_executed_units/ {print $2; exit}' "$log")
  echo "fuzz: $target: ${runs:-?} executions in ${seconds} s, $result" >&2
  rm -rf "$work"
done
exit $status

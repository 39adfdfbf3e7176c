#!/usr/bin/env bash
# The Python package's CI step (.ci/run calls it): a venv under build-py/ (the system pip may
# be externally managed), the build dependencies and test tools from PyPI, `pip install ./python`
# CPU-only (FP4GEMM_CUDA=OFF: the package is tested on the CPU here; a CUDA build of every
# architecture would take minutes), then pytest. pytest's exit status 5 (no tests collected)
# is a failure, as is any other non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=build-py/venv
if ! "$PY" -c "import venv, ensurepip" 2>/dev/null; then
  echo "ci: installing python3-venv"; apt-get update -qq && apt-get install -y -qq python3-venv
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "scikit-build-core>=0.10" numpy pytest ml_dtypes
# torch, for the torch.library ops' tests on CPU tensors (eager, torch.compile, fake tensors).
# PyPI's x86_64 torch is the CUDA build (with its CUDA libraries from PyPI: ~3.5 GB downloaded,
# ~5.4 GB installed; measured here: ~1.5 minutes cold, seconds once pip's cache has it). It is
# skipped (and the torch tests skip, saying so) with FP4GEMM_CI_TORCH=0 or under 10 GB free.
free_gb=$(df -Pk build-py | awk 'NR==2 {print int($4 / 1048576)}')
if [ "${FP4GEMM_CI_TORCH:-1}" = 0 ]; then
  echo "ci: FP4GEMM_CI_TORCH=0: torch not installed, its tests skip"
elif [ "$free_gb" -lt 10 ]; then
  echo "ci: only ${free_gb} GB free: torch not installed, its tests skip"
else
  t0=$(date +%s)
  "$VENV/bin/python" -m pip install -q "torch>=2.4"
  echo "ci: torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') installed in $(( $(date +%s) - t0 )) s"
fi
"$VENV/bin/python" -m pip install -q ./python -Ccmake.define.FP4GEMM_CUDA=OFF
# the C glue must be there (else its tests skip): Python 3.11+ with its headers is what CI has
"$VENV/bin/python" -c "import fp4gemm._ext" || { echo "ci: fp4gemm._ext (the C glue) was not built"; exit 1; }
# from the repository root, so that `import fp4gemm` is the installed package, not python/fp4gemm
set +e
"$VENV/bin/python" -m pytest -q python/tests
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "ci: pytest collected no tests: failure"; exit 1; fi
[ $rc -eq 0 ] || { echo "ci: pytest failed (exit $rc)"; exit $rc; }
"$VENV/bin/python" python/bench/overhead.py

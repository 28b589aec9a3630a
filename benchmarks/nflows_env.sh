#!/usr/bin/env bash
# Create benchmarks/.venv-nflows: a virtual environment that sees the system packages
# (torch, numpy, matplotlib, tqdm, scikit-learn, pyro_ar) and adds nflows on top of them,
# so that the peer comparison in benchmarks/likelihood.py and benchmarks/speed.py runs
# against the very same torch build. nflows is never a run-time dependency of pyro_ar.
#
# nflows 0.14 declares matplotlib, numpy, tensorboard, torch and tqdm as requirements but
# imports only torch, numpy and matplotlib (tensorboard is unused at import time), so it is
# installed with --no-deps: pip must not pull a second torch wheel.
#
# Usage:  bash benchmarks/nflows_env.sh     (then: benchmarks/.venv-nflows/bin/python ...)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-nflows"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install --quiet --no-deps "nflows==0.14"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md, torch
from nflows.nn.nde import MixtureOfGaussiansMADE  # noqa: F401  (the class the benchmarks use)
print(f"nflows {md.version('nflows')} with torch {torch.__version__} from {torch.__file__}")
PY

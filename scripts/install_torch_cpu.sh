#!/usr/bin/env bash
# Installs PyTorch for CPU use from PyPI into a virtual environment (default .venv-torch at the
# repository root), for scripts/two_tower_torch.py. Skips everything when `import torch` already
# works there.
#
#   scripts/install_torch_cpu.sh              # .venv-torch
#   scripts/install_torch_cpu.sh /tmp/venv    # another place
#
# Why not just `pip install torch`: PyPI's Linux x86_64 torch wheel is a CUDA build, and its
# dependencies pull ~4 GB of nvidia-*, cuda-* and triton wheels; the CPU-only wheel lives on
# download.pytorch.org, which this machine cannot reach. Instead torch is installed with
# --no-deps together with only the CUDA runtime wheels its shared libraries are linked against
# (DT_NEEDED of libtorch_cpu/libtorch_cuda/libtorch_python: cudart, cupti, cublas, cusparse,
# cufft, cufile, nvrtc, cusparseLt, nccl, cudnn, nvshmem; without any one of them
# `import torch` fails), and the pure-Python deps. Left out: triton (~1 GB, only for
# torch.compile on GPUs), cusolver, nvjitlink, nvtx, cuda-cccl, cuda-bindings, cuda-toolkit.
# Result: ~4.0 GB instead of ~5.3 GB; CPU ops, autograd and optimisers work (MKL, oneDNN).
# The nvidia pins are the exact versions torch 2.15.0 requires (its METADATA / pip's resolver).
set -euo pipefail
cd "$(dirname "$0")/.."

install_torch_cpu() {
  local venv="${1:-.venv-torch}"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import torch" 2>/dev/null; then
    return 0
  fi
  python3 -m venv "$venv"
  # torch's pure-Python dependencies first: the --no-deps step then runs no conflict check
  "$venv/bin/pip" install -q numpy filelock "typing-extensions>=4.13.0" "sympy>=1.13.3" \
    "networkx>=2.5.1" jinja2 "fsspec>=0.8.5" "setuptools>=77.0.3"
  # torch and only the CUDA wheels its libraries are linked against
  "$venv/bin/pip" install -q --no-deps torch==2.15.0 \
    nvidia-cuda-runtime==13.2.86 nvidia-cuda-cupti==13.2.86 nvidia-cuda-nvrtc==13.2.86 \
    nvidia-cublas==13.4.1.3 nvidia-cusparse==12.7.10.12 nvidia-cufft==12.2.0.57 \
    nvidia-cufile==1.17.1.22 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 \
    nvidia-cudnn-cu13==9.26.0.51 nvidia-nvshmem-cu13==3.7.2
  "$venv/bin/python" -c "
import torch
x = torch.randn(64, 32, requires_grad=True)
(x @ torch.randn(32, 16)).relu().sum().backward()
assert x.grad is not None and x.grad.shape == (64, 32)
print('torch', torch.__version__, 'ok on CPU', file=__import__('sys').stderr)
"
}

install_torch_cpu "$@"

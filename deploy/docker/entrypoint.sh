#!/usr/bin/env bash
# lensfleet image entrypoint: the GPU start-up check, then the container's command.
# LENSFLEET_GPU_CHECK: auto (default: check when the container was given NVIDIA devices), require (this is a GPU
# node: fail without a GPU), off.
set -euo pipefail
python /opt/lensfleet/check_gpu.py
exec "$@"

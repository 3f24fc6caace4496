# The TensorFlow backend's image: its own CUDA/cuDNN/XLA, its own Python environment, nothing of torch.
#   default:          CUDA 12.5 + cuDNN 9 runtime base, tensorflow[and-cuda] from PyPI
#   local CPU build:  --build-arg BASE=localhost/ptybatch-base:bookworm --build-arg ACCELERATOR=cpu
# Pins come only from containers/tf/requirements.txt (shared with the venv runtime).
# The base needs Python >= 3.11 from apt (the numpy pin): Ubuntu 24.04 or Debian 12.
ARG BASE=docker.io/nvidia/cuda:12.5.1-cudnn-runtime-ubuntu24.04
FROM ${BASE}

# cuda: the pinned version as tensorflow[and-cuda] (CUDA/cuDNN/NCCL wheels); cpu: tensorflow-cpu as pinned.
ARG ACCELERATOR=cuda

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1

COPY containers/tf/requirements.txt /tmp/requirements.txt
RUN set -eu; \
    case "$ACCELERATOR" in \
      cuda) sed -i 's/^tensorflow-cpu==/tensorflow[and-cuda]==/' /tmp/requirements.txt ;; \
      cpu) ;; \
      *) echo "ACCELERATOR must be cuda or cpu" >&2; exit 1 ;; \
    esac; \
    pip install --no-cache-dir -r /tmp/requirements.txt; \
    rm /tmp/requirements.txt; \
    TF_CPP_MIN_LOG_LEVEL=2 python -c 'import tensorflow as tf; print("tensorflow", tf.__version__, tf.sysconfig.get_build_info().get("cuda_version"))'

COPY pyproject.toml README.md /tmp/ptybatch/
COPY ptycho_batch /tmp/ptybatch/ptycho_batch
RUN pip install --no-cache-dir --no-deps /tmp/ptybatch && rm -rf /tmp/ptybatch \
 && useradd --create-home --uid 10001 --user-group ptybatch

ARG BASE
ARG REVISION=unknown
ARG FRAMEWORK_VERSION=unknown
LABEL org.opencontainers.image.title="ptybatch-tf" \
      org.opencontainers.image.description="ptybatch tf backend: reference PINN workloads on TensorFlow" \
      org.opencontainers.image.source="https://github.com/ptybatch/ptybatch" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE}" \
      io.ptybatch.backend="tf" \
      io.ptybatch.accelerator="${ACCELERATOR}" \
      io.ptybatch.tensorflow.version="${FRAMEWORK_VERSION}"
USER ptybatch
WORKDIR /home/ptybatch
CMD ["python", "-m", "ptycho_batch.node.probe"]

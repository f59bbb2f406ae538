# petal container image: `docker build -t petal:0.1.0 .`
# Migrations are embedded in the binary (sqlx::migrate!); the image ships the binary, the
# ONNX Runtime library inference loads (fetched by scripts/setup, like everywhere else) and
# the shipped base model (models/base).

# The CUDA image for GPU workers (burn-cuda training, ONNX Runtime's CUDA provider):
#   docker build --build-arg FEATURES=cuda --build-arg ORT=gpu \
#       --build-arg RUNTIME_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 -t petal:0.1.0-cuda .
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- build: the full Rust toolchain, used only to compile petal -------------------------
# No dummy-crate dependency caching: that trick overwrites src/ in a RUN step, and RUN
# steps here must also be safe to execute outside Docker, in a real work tree.
FROM rust:1.95-bookworm AS build
# Cargo features (`cuda` for the GPU image) and the ONNX Runtime build (`cpu` or `gpu`).
ARG FEATURES=""
ARG ORT=cpu
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin petal ${FEATURES:+--features "$FEATURES"} \
    && scripts/setup --runtime $( [ "$ORT" = gpu ] && echo --gpu )

# --- runtime: a small Debian (or the CUDA runtime image) with CA roots, no compiler, non-root
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/petal --create-home \
        --shell /usr/sbin/nologin petal
WORKDIR /var/lib/petal
COPY --from=build /src/target/release/petal /usr/local/bin/petal
COPY --from=build /src/runtime/onnxruntime/ /usr/local/lib/petal/onnxruntime/
COPY --from=build /src/models/base/ /usr/local/share/petal/models/base/
USER 10001
EXPOSE 8080 11112
ENV PETAL_LISTEN=0.0.0.0:8080 PETAL_LOG_FORMAT=json \
    ORT_DYLIB_PATH=/usr/local/lib/petal/onnxruntime/libonnxruntime.so.1.31.1 \
    PETAL_BASE_MODEL=/usr/local/share/petal/models/base
# `petal healthcheck` GETs /healthz on PETAL_LISTEN (wildcard -> loopback); the image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["petal", "healthcheck"]
ENTRYPOINT ["petal"]
CMD ["serve"]

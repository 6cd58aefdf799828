# syntax=docker/dockerfile:1
#
# autodiscover-exporter container image.
#
#   docker build -t autodiscover-exporter .
#   docker run --rm -p 10195:10195 \
#     -v "$PWD/examples/single-domain.yml:/etc/autodiscover-exporter/config.yml:ro" \
#     autodiscover-exporter
#   docker run --rm -p 10195:10195 autodiscover-exporter demo      # simulated world
#   docker run --rm autodiscover-exporter check user@example.com   # one-shot trace
#
# The exporter reads its configuration from /etc/autodiscover-exporter/config.yml (mount a
# file or a Kubernetes ConfigMap there; see examples/). The image contains no configuration.
# It listens on :10195 and runs as the unprivileged user 10001.

FROM rust:1.95-bookworm AS builder
WORKDIR /build
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies between builds; the
# binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/autodiscover-exporter /out/autodiscover-exporter

FROM debian:bookworm-slim
# ca-certificates: the system trust store the probe validates Autodiscover certificates
# against (configuration `tls.system_roots`).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 autodiscover \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin autodiscover \
 && mkdir -p /etc/autodiscover-exporter \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/autodiscover-exporter
COPY --from=builder /out/autodiscover-exporter /usr/local/bin/autodiscover-exporter

LABEL org.opencontainers.image.title="autodiscover-exporter" \
      org.opencontainers.image.description="Prometheus exporter that walks Outlook's Autodiscover path for every mailbox domain" \
      org.opencontainers.image.source="https://github.com/autodiscover-exporter/autodiscover-exporter" \
      org.opencontainers.image.licenses="Apache-2.0"

USER 10001:10001
# The history of changes (storage.path, default autodiscover-history.db in the working
# directory) lives here; mount a volume to keep it across containers.
WORKDIR /var/lib/autodiscover-exporter
VOLUME /var/lib/autodiscover-exporter
EXPOSE 10195
ENTRYPOINT ["/usr/local/bin/autodiscover-exporter"]
CMD ["serve", "--config.file=/etc/autodiscover-exporter/config.yml"]

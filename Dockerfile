# authgate container image: a release build in the pinned toolchain, then a final image with only
# the binary, the C runtime it links (glibc, libgcc) and CA certificates, running as uid 65532.
#
#   docker build -t authgate .
#   docker run --rm -p 8080:8080 -v "$PWD/gateway.yaml:/etc/authgate/gateway.yaml:ro" authgate
#
# The config is read from /etc/authgate/gateway.yaml (mount a file or a Kubernetes ConfigMap
# there; the gateway reloads when it changes); state (a generated session secret, a SQLite
# users.db) goes to data_dir: point it at /var/lib/authgate and mount a volume there, or keep no
# state (session.store redis://..., session.secret from a Secret). The config's listen and
# admin.listen must be 0.0.0.0:PORT to be reachable from outside the container.
# See deploy/kubernetes/ and the README's "Deploy" section.

# The toolchain of rust-toolchain.toml, on the Debian release of the final image's runtime.
FROM docker.io/library/rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
# `.git` is usually not in the build context: pass the commit for `authgate --version`.
ARG AUTHGATE_COMMIT=unknown
ENV AUTHGATE_COMMIT=${AUTHGATE_COMMIT}
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gateway --bin authgate \
    && install -D -m 0755 target/release/authgate /out/usr/bin/authgate \
    && install -d -m 0750 -o 65532 -g 65532 /out/var/lib/authgate

# glibc, libgcc_s and CA certificates; no shell, no package manager; user `nonroot` (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /
USER 65532:65532
ENV GATEWAY_CONFIG=/etc/authgate/gateway.yaml
EXPOSE 8080 9090
# No curl in the image: the binary probes its own admin listener.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/bin/authgate", "health", "--url", "http://127.0.0.1:9090/healthz"]
ENTRYPOINT ["/usr/bin/authgate"]
CMD ["run"]

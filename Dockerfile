# contract-bridge: a multi-stage build. The runtime image holds the binary,
# CA certificates and nothing else; it runs as an unprivileged user.
#
#   docker build -t contract-bridge .
#   docker run --rm -v $PWD/config:/etc/contract-bridge:ro contract-bridge \
#       run --config /etc/contract-bridge/config.toml
#
# compose.yaml runs it beside PostgreSQL.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --profile dist --bin contract-bridge \
 && cp target/dist/contract-bridge /usr/local/bin/contract-bridge \
 && contract-bridge completions bash > /usr/local/share/contract-bridge.bash \
 && contract-bridge man > /usr/local/share/contract-bridge.1

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/contract-bridge --create-home --shell /usr/sbin/nologin bridge \
 && mkdir -p /etc/contract-bridge
COPY --from=build /usr/local/bin/contract-bridge /usr/local/bin/contract-bridge
COPY --from=build /usr/local/share/contract-bridge.bash /usr/share/bash-completion/completions/contract-bridge
COPY --from=build /usr/local/share/contract-bridge.1 /usr/share/man/man1/contract-bridge.1
COPY --from=build /src/mappings/examples /usr/share/contract-bridge/mappings/examples
USER bridge
WORKDIR /var/lib/contract-bridge
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["/usr/local/bin/contract-bridge", "--version"]
ENTRYPOINT ["/usr/local/bin/contract-bridge"]
CMD ["run", "--config", "/etc/contract-bridge/config.toml", "--log-format", "json"]

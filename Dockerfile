# The image `ztopo export kubernetes` names (ztopo:latest by default):
#   docker build -t ztopo .
# Two stages: Go and libzmq's headers to build, then Debian with only the
# libzmq5 runtime library and the binary.
FROM golang:1.26-trixie AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libzmq3-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build command of `make build` (kube/dockerfile_test.go holds them equal
# and runs this one).
RUN CGO_ENABLED=1 go build -o /out/ztopo ./cmd/ztopo

FROM debian:trixie-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libzmq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /run/ztopo ztopo
COPY --from=build /out/ztopo /usr/local/bin/ztopo
USER ztopo
# bind: auto ipc endpoints and the control socket live under $XDG_RUNTIME_DIR.
ENV XDG_RUNTIME_DIR=/tmp
EXPOSE 9464
ENTRYPOINT ["ztopo"]
CMD ["version"]

# pxewim container image: a static binary on an empty base.
#
#   docker build --build-arg VERSION=1.2.0 -t pxewim:1.2.0 .      (or: make docker)
#   docker run --rm --network host --read-only --cap-drop ALL --cap-add NET_BIND_SERVICE --cap-add NET_RAW \
#     -v /srv/pxe/store:/store:ro -v /etc/pxewim:/etc/pxewim:ro -v /usr/lib/ipxe:/usr/lib/ipxe:ro \
#     -v /usr/share/ieee-data:/usr/share/ieee-data:ro \
#     pxewim:1.2.0 serve --config /etc/pxewim/pxewim.yaml --log-format json
#
# The process runs as the container's root so that the two capabilities above apply (Docker
# gives added capabilities to root only); --cap-drop ALL leaves it nothing else. Full DHCP mode
# writes its lease database: mount a writable folder for dhcp.full.leases.
# DHCP (proxy or full) needs --network host: PXE clients broadcast, and bridged container
# networks do not carry broadcasts from the lab LAN. TFTP and HTTP alone work with published
# ports (-p 69:69/udp -p 80:80), but TFTP's data port is ephemeral, so host networking is
# simpler there too. The image has no iPXE binaries: mount Debian's /usr/lib/ipxe (ipxe
# package) and point ipxe.dir at it. The dashboard listens on 127.0.0.1:9090 (admin: in the
# config); with host networking, reach it with an SSH tunnel, or set admin.listen with
# admin.user and admin.password_file.
#
# The build flags are the Makefile's (reproducible: same source + VERSION = same binary).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ENV CGO_ENABLED=0
RUN go build -trimpath -buildvcs=false -ldflags "-s -w -buildid= -X main.version=${VERSION}" -o /out/pxewim ./cmd/pxewim \
 && /out/pxewim --version

FROM scratch
COPY --from=build /out/pxewim /pxewim
# Optional mounts: /usr/lib/ipxe (iPXE binaries), /usr/share/ieee-data (NIC vendor names).
EXPOSE 67/udp 69/udp 80/tcp 4011/udp
ENTRYPOINT ["/pxewim"]
CMD ["serve", "--config", "/etc/pxewim/pxewim.yaml"]

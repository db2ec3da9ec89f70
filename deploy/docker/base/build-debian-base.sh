#!/bin/sh
# Makes the local stand-in base image `localhost/shopstream-debian-base:bookworm` from Debian's own
# packages with debootstrap, for machines that can reach Debian's mirror but no container registry.
# The Dockerfiles keep their public base images as defaults; `shopstream compose build` passes this
# one (and the stand-ins built on it, deploy/docker/base/*.Dockerfile) only when no registry answers.
# Usage: build-debian-base.sh ENGINE WORKDIR   (ENGINE: podman or docker; needs root for debootstrap)
set -eu
ENGINE=${1:-podman}
WORK=${2:-/tmp/shopstream-debian-base}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TAG=localhost/shopstream-debian-base:bookworm
ROOTFS="$WORK/rootfs"
rm -rf "$ROOTFS"
mkdir -p "$ROOTFS"
debootstrap --variant=minbase --include=ca-certificates bookworm "$ROOTFS" "$MIRROR"
# The image's apt must find the same mirror, and needs no caches or docs.
echo "deb $MIRROR bookworm main" > "$ROOTFS/etc/apt/sources.list"
echo "deb $MIRROR bookworm-updates main" >> "$ROOTFS/etc/apt/sources.list"
echo "deb ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} bookworm-security main" >> "$ROOTFS/etc/apt/sources.list"
rm -rf "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
tar -C "$ROOTFS" -c . | "$ENGINE" import - "$TAG"
rm -rf "$ROOTFS"

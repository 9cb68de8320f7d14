#!/usr/bin/env bash
# images.sh — build every image locally, with no registry and `docker build --network=none`.
#
#   bash images.sh            build what is missing or stale (skips an image built from this checkout's inputs)
#   FORCE=1 bash images.sh    rebuild everything (the base from the cached rootfs tar, if any;
#                             REBOOTSTRAP=1 also re-runs debootstrap)
#   bash images.sh base|consul|etcd|prometheus|user-service|jupyter   one image only (jupyter builds the
#                             images it starts FROM only when they are missing)
#
# Images (each also tagged with its upstream version):
#   lab/debian:bookworm   debootstrap --variant=minbase bookworm | docker import   (~117 MB)
#   lab/consul:ci         bullseye consul 1.8.7 .deb + its deps from bookworm, dpkg -i
#   lab/etcd:ci           trixie etcd-server + etcd-client 3.5.16 .debs, dpkg -i
#   lab/prometheus:ci     bullseye prometheus 2.24.1 .deb + its (libjs) deps from bookworm, dpkg -i, and
#                         bookworm's wget (the healthcheck in docker-compose.yml uses it, as prom/prometheus has it)
#   lab/user-service:ci   bookworm python3 .debs + the wheels of user-service/requirements.txt installed
#                         with pip --no-index from the build context (the project's code is mounted, not copied)
#   lab/jupyter:ci        FROM lab/user-service:ci: the wheels of jupyter/requirements.txt (all of pyproject's
#                         dependencies) in /opt/jupyter-deps; consul, etcd, etcdctl and prometheus from the .debs
#                         above and bookworm's tini; user lab (uid 1000) for the classroom's learners; the checkout
#                         is mounted at /src, the notebooks at /lab/notebooks
# .debs from other suites come through a PRIVATE apt config (the system's /etc/apt is never changed);
# their dependencies are resolved against the base image's dpkg status with `apt-get -s` and then
# fetched from the system's own bookworm sources with `apt-get download` (no install on the host).
# Needs engine.sh to have run (dockerd up). Run as root.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
WORK=${LAB_IMAGES_WORK:-/var/tmp/lab-images}
FORCE=${FORCE:-0}
DOCKER=${DOCKER:-/usr/bin/docker}
[ -x "$DOCKER" ] || DOCKER=docker
export DEBIAN_FRONTEND=noninteractive DOCKER_BUILDKIT=0
BASE=lab/debian:bookworm
TIMINGS="$WORK/timings.txt"

log() { printf '[images.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
timing() { echo "$(date -u +%FT%TZ) $*" >> "$TIMINGS"; log "$*"; }
have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }
# The cache is checked against this checkout: each image carries a label with a hash of what built it (this script,
# lib.sh and the image's own inputs), and an image built from other inputs is built again.
recipe() { cat "$HERE/images.sh" "$HERE/lib.sh" "$@" | sha256sum | cut -c1-16; }
inputs() {
  case "$1" in
    lab/user-service:ci) echo "$HERE/user-service/requirements.txt" ;;
    lab/jupyter:ci) echo "$HERE/jupyter/requirements.txt" ;;
  esac
}
need_build() {  # need_build IMAGE: FORCE=1, missing, or built from other inputs
  [ "$FORCE" = 1 ] && return 0
  have_image "$1" || return 0
  local built; built=$("$DOCKER" image inspect -f '{{index .Config.Labels "lab.recipe"}}' "$1")
  [ "$built" = "$(recipe $(inputs "$1"))" ] && return 1
  log "$1 was built from other inputs (recipe ${built:-none}): building it again"
}

MIRROR=${MIRROR:-$(mirror)}

declare -A PAPT_UPDATED=()
papt() {  # papt SUITE apt-get-args... : apt-get with a private configuration (own lists and cache)
  local suite=$1; shift
  local d="$WORK/papt-$suite"
  local o=(-q -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
           -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o APT::Sandbox::User=root)
  if [ -z "${PAPT_UPDATED[$suite]:-}" ]; then
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$MIRROR" "$suite" > "$d/sources.list"
    apt-get "${o[@]}" update >/dev/null
    PAPT_UPDATED[$suite]=1
  fi
  apt-get "${o[@]}" "$@"
}

sys_updated=0
sys_apt_update() { [ "$sys_updated" = 1 ] || { apt-get -q update >/dev/null; sys_updated=1; }; }

# ---------------------------------------------------------------- base image
build_base() {
  need_build "$BASE" || { log "$BASE exists (FORCE=1 rebuilds)"; return 0; }
  local t=$(now) tar="$WORK/base-rootfs.tar" rootfs="$WORK/rootfs"
  mkdir -p "$WORK"
  [ "${REBOOTSTRAP:-0}" = 1 ] && rm -f "$tar"   # FORCE=1 alone re-imports the cached rootfs tar
  if [ ! -s "$tar" ]; then
    command -v debootstrap >/dev/null || { sys_apt_update; apt-get -q install -y --no-install-recommends debootstrap >/dev/null; }
    rm -rf "$rootfs"
    local t1=$(now)
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
      || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    timing "debootstrap --variant=minbase bookworm: $(since "$t1") s"
    # like the official debian images: no service starts from maintainer scripts, no apt caches
    printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"; chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$tar" .          # cache: a later rebuild imports this in ~2 s
    rm -rf "$rootfs"
  fi
  local t2=$(now)
  "$DOCKER" import -c 'CMD ["/bin/bash"]' -c "LABEL lab.recipe=$(recipe)" "$tar" "$BASE" >/dev/null
  timing "docker import $BASE: $(since "$t2") s (base total $(since "$t") s)"
}

base_status() {  # the base image's dpkg status, for resolving what each .deb still needs
  local f="$WORK/base.status"
  if [ ! -s "$f" ] || [ "$FORCE" = 1 ]; then
    "$DOCKER" run --rm --network none --entrypoint cat "$BASE" /var/lib/dpkg/status > "$f"
  fi
  echo "$f"
}

# fetch_debs CTX SUITE PKG...   : PKG from SUITE (private apt; 'bookworm' = system apt) into CTX/debs,
# plus every dependency the base image lacks, from bookworm. Fails if a dependency cannot be met on bookworm.
fetch_debs() {
  local ctx=$1 suite=$2; shift 2
  local debs="$ctx/debs" st deps sim
  rm -rf "$debs"; mkdir -p "$debs"
  sys_apt_update
  # EXTRA_BOOKWORM: packages the image needs besides PKG, from bookworm (their dependencies are resolved too).
  [ -n "${EXTRA_BOOKWORM:-}" ] && (cd "$debs" && apt-get -q -o APT::Sandbox::User=root download $EXTRA_BOOKWORM >/dev/null)
  if [ "$suite" = bookworm ]; then
    (cd "$debs" && apt-get -q -o APT::Sandbox::User=root download "$@" >/dev/null)
  else
    (cd "$debs" && papt "$suite" download "$@" >/dev/null)
  fi
  st=$(base_status)
  local files=()
  for f in "$debs"/*.deb; do files+=("$f"); log "  $(basename "$f"): Depends: $(dpkg-deb -f "$f" Depends)"; done
  # Simulate installing those .debs into the base image (its dpkg status, bookworm's package lists)
  sim=$(apt-get -s --no-install-recommends -o Dir::State::status="$st" install "${files[@]}" 2>&1) \
    || { echo "$sim" >&2; log "ERROR: Depends of $* cannot be met on bookworm"; exit 1; }
  deps=$(echo "$sim" | awk '/^Inst /{print $2}' | grep -vxF -f <(for f in "${files[@]}"; do dpkg-deb -f "$f" Package; done) || true)
  if [ -n "$deps" ]; then
    log "  + from bookworm: $(echo $deps)"
    (cd "$debs" && apt-get -q -o APT::Sandbox::User=root download $deps >/dev/null)
  fi
}

deb_version() { dpkg-deb -f "$(ls "$1"/debs/$2_*.deb | head -1)" Version | sed 's/^[0-9]*://; s/[+~-].*//'; }

build_ctx() {  # build_ctx NAME CTX VERSION
  local name=$1 ctx=$2 ver=$3 t=$(now)
  "$DOCKER" build --network=none --force-rm -q --label "lab.recipe=$(recipe $(inputs "lab/$name:ci"))" \
    -t "lab/$name:ci" -t "lab/$name:$ver" "$ctx" >/dev/null
  timing "docker build --network=none lab/$name:$ver: $(since "$t") s, size $("$DOCKER" image inspect -f '{{.Size}}' "lab/$name:ci" | awk '{printf "%.0f MB", $1/1e6}')"
}

# Dockerfile for "dpkg -i every .deb in the context" images
deb_dockerfile() {  # deb_dockerfile CTX ENTRYPOINT-JSON CMD-JSON SMOKE-TEST-COMMAND
  cat > "$1/Dockerfile" <<EOF
FROM $BASE
COPY debs/ /tmp/debs/
RUN dpkg -i /tmp/debs/*.deb && rm -rf /tmp/debs && $4
ENTRYPOINT $2
CMD $3
EOF
}

# build_deb NAME SUITE "PKG..." ENTRYPOINT SMOKE-TEST [EXTRA_BOOKWORM]: lab/NAME:ci from Debian packages
# (dpkg -i), also tagged with the first package's version.
build_deb() {
  local name=$1 suite=$2 pkgs=$3 entry=$4 smoke=$5
  need_build "lab/$name:ci" || { log "lab/$name:ci exists"; return 0; }
  local t=$(now) ctx="$WORK/ctx-$name"
  EXTRA_BOOKWORM=${6:-} fetch_debs "$ctx" "$suite" $pkgs
  timing "$name: fetched $(ls "$ctx"/debs | wc -l) debs in $(since "$t") s"
  deb_dockerfile "$ctx" "[\"$entry\"]" '["--version"]' "$smoke"
  build_ctx "$name" "$ctx" "$(deb_version "$ctx" "${pkgs%% *}")"
}

build_consul() { build_deb consul bullseye consul /usr/bin/consul 'consul version'; }
build_etcd() { build_deb etcd trixie "etcd-server etcd-client" /usr/bin/etcd 'etcd --version && etcdctl version'; }
build_prometheus() { build_deb prometheus bullseye prometheus /usr/bin/prometheus 'prometheus --version && wget --version >/dev/null' wget; }

# pip_wheels CTX PYVER REQUIREMENTS: CTX/wheels = the wheels of REQUIREMENTS (and pip itself) for the IMAGE's
# python (cpPYVER, manylinux x86_64 up to bookworm's glibc 2.36), not the host's. pip compares platform tags
# literally, so every manylinux tag the image can run is listed (debugpy, for one, ships only manylinux_2_34).
pip_wheels() {
  local ctx=$1 pyver=$2 req=$3 plats=(--platform manylinux1_x86_64 --platform manylinux2010_x86_64 --platform manylinux2014_x86_64)
  for v in $(seq 5 36); do plats+=(--platform "manylinux_2_${v}_x86_64"); done
  rm -rf "$ctx/wheels"; mkdir -p "$ctx/wheels"
  cp "$req" "$ctx/requirements.txt"
  python3 -m pip download -q --disable-pip-version-check --only-binary=:all: "${plats[@]}" \
    --python-version "$pyver" --implementation cp --abi "cp$pyver" --abi abi3 --abi none \
    -d "$ctx/wheels" -r "$ctx/requirements.txt" pip 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
}

# The user service: bookworm python3 .debs plus the wheels in user-service/requirements.txt, installed offline
# with pip run from its own wheel (no python3-pip .deb) into /opt/pydeps (--target skips PEP 668's check).
# The project's code is not in the image: ci.override.yml mounts the checkout at /src, so a code change
# needs no rebuild.
build_user_service() {
  need_build lab/user-service:ci || { log "lab/user-service:ci exists"; return 0; }
  local t=$(now) ctx="$WORK/ctx-user-service" pyver
  fetch_debs "$ctx" bookworm python3-minimal python3
  pyver=$(dpkg-deb -f "$(ls "$ctx"/debs/python3.11-minimal_*.deb)" Version | cut -d. -f1,2 | tr -d .)   # e.g. 311
  pip_wheels "$ctx" "$pyver" "$HERE/user-service/requirements.txt"
  timing "user-service: fetched $(ls "$ctx"/debs | wc -l) debs + $(ls "$ctx"/wheels | wc -l) wheels in $(since "$t") s"
  cat > "$ctx/Dockerfile" <<EOF
FROM $BASE
COPY debs/ /tmp/debs/
COPY wheels/ /tmp/wheels/
COPY requirements.txt /tmp/requirements.txt
# Not "dpkg -i *.deb": python3 Pre-Depends on python3.11-minimal and dpkg takes the files in name order.
# apt-get orders local .debs itself (no lists, no network).
RUN apt-get install -y -q --no-install-recommends /tmp/debs/*.deb >/dev/null \\
 && python3 \$(ls /tmp/wheels/pip-*.whl)/pip install -q --no-index --no-cache-dir --disable-pip-version-check \\
      --find-links /tmp/wheels --target /opt/pydeps -r /tmp/requirements.txt \\
 && rm -rf /tmp/debs /tmp/wheels \\
 && PYTHONPATH=/opt/pydeps python3 -c 'import grpc, consul, pyetcd, prometheus_client; print("grpc", grpc.__version__)'
ENV PYTHONPATH=/src:/opt/pydeps PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
ENTRYPOINT ["python3"]
EOF
  build_ctx user-service "$ctx" "$(ls "$ctx"/wheels/grpcio-[0-9]*.whl | sed 's/.*grpcio-\([0-9.]*\)-.*/\1/')"
}

# JupyterLab for the CI stack, on lab/user-service:ci's python. Everything the kernel imports goes into a directory
# of its own, alone on PYTHONPATH: pip --target into the parent's /opt/pydeps would not upgrade or dedupe what is
# there, and one complete set cannot mix versions (the parent's 50 MB stay, unused). --target also puts the wheels'
# data files (JupyterLab's static assets, the widgets' lab extension, nbconvert's templates, the server extensions'
# configs) under /opt/jupyter-deps/{share,etc}/jupyter, where Jupyter looks only when told (JUPYTER_PATH & co.).
# ENTRYPOINT [] (the parent's is python3): the compose file gives the whole command, as for the learner's image.
build_jupyter() {
  need_build lab/jupyter:ci || { log "lab/jupyter:ci exists"; return 0; }
  local t=$(now) ctx="$WORK/ctx-jupyter" pyver d=/opt/jupyter-deps
  # consul, etcd and prometheus from the same .debs as lab/consul:ci, lab/etcd:ci and lab/prometheus:ci (fetch_debs
  # fills one CTX/debs each): the compose kernel uses the consul and etcdctl commands, and a classroom learner's
  # container runs the local runtime's own servers on its loopback. tini: the learner's server runs under it.
  fetch_debs "$ctx/consul" bullseye consul
  fetch_debs "$ctx/etcd" trixie etcd-client etcd-server
  fetch_debs "$ctx/prometheus" bullseye prometheus
  fetch_debs "$ctx/tini" bookworm tini
  rm -rf "$ctx/debs"; mkdir -p "$ctx/debs"
  mv "$ctx"/{consul,etcd,prometheus,tini}/debs/*.deb "$ctx/debs/"; rm -rf "$ctx"/{consul,etcd,prometheus,tini}
  pyver=$("$DOCKER" run --rm --network none --entrypoint python3 lab/user-service:ci -c 'import sys; print("%d%d" % sys.version_info[:2])')
  pip_wheels "$ctx" "$pyver" "$HERE/jupyter/requirements.txt"
  timing "jupyter: fetched $(ls "$ctx"/debs | wc -l) debs + $(ls "$ctx"/wheels | wc -l) wheels in $(since "$t") s"
  cat > "$ctx/Dockerfile" <<EOF
FROM lab/user-service:ci
COPY debs/ /tmp/debs/
COPY wheels/ /tmp/wheels/
COPY requirements.txt /tmp/requirements.txt
RUN apt-get install -y -q --no-install-recommends /tmp/debs/*.deb >/dev/null \\
 && python3 \$(ls /tmp/wheels/pip-*.whl)/pip install -q --no-index --no-cache-dir --disable-pip-version-check \\
      --find-links /tmp/wheels --target $d -r /tmp/requirements.txt \\
 && rm -rf /tmp/debs /tmp/wheels /tmp/requirements.txt
ENV PYTHONPATH=/src:$d PATH=$d/bin:\$PATH JUPYTER_PATH=$d/share/jupyter JUPYTER_CONFIG_PATH=$d/etc/jupyter \\
    JUPYTERLAB_DIR=$d/share/jupyter/lab
# The smoke test gets a throw-away HOME, so nothing it writes is left in the learner's.
RUN export HOME=/tmp/smoke && python3 -m jupyterlab --version && python3 -m nbconvert --version \\
 && consul version && etcdctl version && etcd --version && prometheus --version && tini --version \\
 && jupyterhub-singleuser --version && test -f $d/share/jupyter/lab/static/index.html \\
 && python3 -m jupyter labextension list 2>&1 | grep -q 'jupyterlab-manager.*enabled.*OK' \\
 && python3 -c 'import grpc_tools, consul, pyetcd, docker, ipywidgets, matplotlib.pyplot, opentelemetry.exporter.otlp.proto.grpc, sqlite3' \\
 && rm -rf /tmp/smoke && mkdir -m 1777 /home/lab \\
 && useradd --uid 1000 --home-dir /home/lab --no-create-home --shell /bin/bash lab
# The container may run as the learner's uid, which has no home: Jupyter, IPython and matplotlib write under \$HOME.
ENV HOME=/home/lab
WORKDIR /lab/notebooks
ENTRYPOINT []
CMD ["python3"]
EOF
  build_ctx jupyter "$ctx" "$(ls "$ctx"/wheels/jupyterlab-[0-9]*.whl | sed 's/.*jupyterlab-\([0-9.]*\)-.*/\1/')"
}

mkdir -p "$WORK"
what=${1:-all}
"$DOCKER" info >/dev/null 2>&1 || { log "dockerd is not answering: run engine.sh first"; exit 1; }
case "$what" in
  all) build_base; build_consul; build_etcd; build_prometheus; build_user_service; build_jupyter ;;
  base) build_base ;;
  consul|etcd|prometheus) have_image "$BASE" || build_base; "build_$what" ;;
  user-service) have_image "$BASE" || build_base; build_user_service ;;
  # only a MISSING parent is built here: rebuilding a stale lab/user-service:ci is `user-service`'s (and `all`'s) job
  jupyter) have_image "$BASE" || build_base; have_image lab/user-service:ci || build_user_service; build_jupyter ;;
  *) echo "usage: $0 [all|base|consul|etcd|prometheus|user-service|jupyter]" >&2; exit 2 ;;
esac
# a FORCE rebuild leaves the previous layers dangling
[ "$FORCE" = 1 ] && "$DOCKER" image prune -f >/dev/null
"$DOCKER" images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep '^lab/' | sort

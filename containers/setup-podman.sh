#!/usr/bin/env bash
# containers/setup-podman.sh: make rootful podman usable for ptybatch on a Debian 12 host that has no
# Docker engine and cannot pull from a registry. Idempotent: each step checks before it changes anything.
#
#   1. packages: podman with runc (crun rejects hybrid cgroup v1/v2 hosts), catatonit for --init,
#      debootstrap for the base image; charliecloud too unless CHARLIECLOUD=0
#   2. /etc/containers: runc, cgroupfs, file event log, ulimits capped to what root may set here
#      (without CAP_SYS_RESOURCE podman's defaults make every container fail in setrlimit), no proxy copy
#   3. /etc/ptybatch/build-flags: the extra `podman build` arguments this host needs, read by
#      `ptybatch containers build`: the host CA bundle and pip configuration (local wheel stores
#      included) mounted read-only for RUN steps, so pip verifies TLS and finds the local wheels;
#      mounts are never committed to the image
#   4. the base image BASE_IMAGE, a debootstrap'd Debian imported into podman (nothing can be pulled)
#   5. a smoke run: --init, --network none, --user, a bind mount, no host variable inside
#
# Knobs: BASE_IMAGE (localhost/ptybatch-base:bookworm), SUITE (bookworm), MIRROR (from apt sources),
#        CACHE_DIR (/var/cache/ptybatch-containers, the rootfs tarball), CHARLIECLOUD (1)
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-localhost/ptybatch-base:bookworm}
SUITE=${SUITE:-bookworm}
CACHE_DIR=${CACHE_DIR:-/var/cache/ptybatch-containers}
CHARLIECLOUD=${CHARLIECLOUD:-1}
HOST_CA=${HOST_CA:-/etc/ssl/certs/ca-certificates.crt}
ETC=/etc/ptybatch
export DEBIAN_FRONTEND=noninteractive

log() { printf '[setup-podman] %s\n' "$*"; }
die() { printf '[setup-podman] ERROR: %s\n' "$*" >&2; exit 1; }
step() {
  local name=$1 start=$SECONDS; shift
  log "-> $name"
  "$@"
  log "   $name: $((SECONDS - start))s"
}
[ "$(id -u)" = 0 ] || die "run as root (rootful podman)"
SCRATCH=(); trap 'rm -rf "${SCRATCH[@]}"' EXIT

# write_if_changed FILE: replace FILE with stdin only when the content differs
write_if_changed() {
  local want; want=$(cat)
  if [ "$(cat "$1" 2>/dev/null)" != "$want" ]; then
    mkdir -p "$(dirname "$1")"
    printf '%s\n' "$want" > "$1"
    log "   wrote $1"
  fi
}

install_packages() {
  local wanted=(podman runc conmon catatonit netavark aardvark-dns containernetworking-plugins
                fuse-overlayfs uidmap slirp4netns iptables debootstrap ca-certificates)
  [ "$CHARLIECLOUD" = 1 ] && wanted+=(charliecloud python3-lark squashfs-tools)
  local missing=() p
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && { log "   all packages present"; return; }
  log "   installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 -qq update
  apt-get -o DPkg::Lock::Timeout=600 -qq -y install --no-install-recommends "${missing[@]}" >/dev/null
}

oci_runtime() {
  local unified=/sys/fs/cgroup/unified/cgroup.controllers
  if [ -f "$unified" ] && [ -n "$(tr -d ' \n' < "$unified")" ]; then echo runc; else echo crun; fi
}

has_capability() { # has_capability BIT: is BIT set in this shell's effective capabilities
  local eff; eff=$(awk '/^CapEff/{print $2}' /proc/self/status)
  (( (16#$eff >> $1) & 1 ))
}

capped_ulimits() {
  has_capability 24 && return  # CAP_SYS_RESOURCE: podman's defaults are settable
  local nofile nproc
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] && nofile=1048576
  # podman 4.3 lowers its own RLIMIT_NPROC to 32768 when it starts
  { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
  echo "default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=${nproc}:${nproc}\"]"
}

configure_engine() {
  write_if_changed /etc/containers/containers.conf <<EOF
# written by ptybatch containers/setup-podman.sh
[containers]
$(capped_ulimits)
http_proxy = false
[engine]
runtime = "$(oci_runtime)"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  local driver=vfs
  grep -qw overlay /proc/filesystems && driver=overlay
  local current; current=$(sed -n 's/^driver = "\(.*\)"$/\1/p' /etc/containers/storage.conf 2>/dev/null || true)
  [ -n "$current" ] && driver=$current  # never switch the driver of an existing store
  write_if_changed /etc/containers/storage.conf <<EOF
# written by ptybatch containers/setup-podman.sh
[storage]
driver = "${driver}"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
}

# pip_setting KEY: this host's pip setting global.KEY (or from PIP_* env), last one wins
pip_setting() {
  python3 -m pip config list 2>/dev/null | sed -n "s/^\(global\|:env:\)\.$1='\(.*\)'$/\2/p" | tail -n 1
}

# local_wheel_dirs: the directories behind this host's find-links and file:// indexes
local_wheel_dirs() {
  local v
  for v in $(pip_setting find-links) $(pip_setting extra-index-url) $(pip_setting index-url); do
    case $v in
      file://*) v=${v#file://}; v=${v%/}; v=${v%/simple} ;;
      /*) ;;
      *) continue ;;
    esac
    [ -d "$v" ] && echo "$v"
  done | sort -u
}

configure_builds() {
  mkdir -p "$ETC/build-pip"
  cmp -s "$HOST_CA" "$ETC/build-pip/host-ca.crt" || cp -f "$HOST_CA" "$ETC/build-pip/host-ca.crt"
  local find_links extra_index
  find_links=$(pip_setting find-links); extra_index=$(pip_setting extra-index-url)
  write_if_changed "$ETC/build-pip/pip.conf" <<EOF
[global]
cert = /etc/xdg/pip/host-ca.crt
disable-pip-version-check = true
${find_links:+find-links = $find_links}
${extra_index:+extra-index-url = $extra_index}
EOF
  {
    echo "--volume=$ETC/build-pip:/etc/xdg/pip:ro"
    local dir
    for dir in $(local_wheel_dirs); do echo "--volume=$dir:$dir:ro"; done
  } | write_if_changed "$ETC/build-flags"
}

apt_mirror() {
  [ -n "${MIRROR:-}" ] && { echo "$MIRROR"; return; }
  local m
  m=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -E '/debian/?$' | head -1)
  [ -z "$m" ] && m=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
                       | awk '{print $2}' | grep -E '/debian/?$' | head -1)
  [ -n "$m" ] || die "no Debian mirror in the apt sources; set MIRROR"
  echo "$m"
}

base_image() {
  if podman image exists "$BASE_IMAGE"; then log "   $BASE_IMAGE present"; return; fi
  local tarball=$CACHE_DIR/debian-$SUITE-minbase.tar
  if [ ! -s "$tarball" ]; then
    mkdir -p "$CACHE_DIR"
    local rootfs; rootfs=$(mktemp -d /var/tmp/ptybatch-rootfs.XXXXXX); SCRATCH+=("$rootfs")
    log "   debootstrap --variant=minbase $SUITE from $(apt_mirror)"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$(apt_mirror)" > "$CACHE_DIR/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE_DIR/debootstrap.log"; die "debootstrap failed"; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
           "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  fi
  podman import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase $SUITE" "$tarball" "$BASE_IMAGE" >/dev/null
}

smoke() {
  local dir; dir=$(mktemp -d /var/tmp/ptybatch-smoke.XXXXXX); SCRATCH+=("$dir")
  chmod 777 "$dir"
  PTYBATCH_SMOKE_LEAK=host podman run --rm --init --network none --http-proxy=false \
    --user 1000:1000 -v "$dir:$dir" -w "$dir" --env JOB=smoke "$BASE_IMAGE" \
    sh -c 'echo "uid=$(id -u) job=$JOB leak=${PTYBATCH_SMOKE_LEAK:-none}" > out' || die "podman run failed"
  log "   container wrote: $(cat "$dir/out")"
  [ "$(cat "$dir/out")" = "uid=1000 job=smoke leak=none" ] || die "unexpected smoke output"
}

step packages install_packages
step "engine config" configure_engine
step "build flags" configure_builds
step "base image $BASE_IMAGE" base_image
step smoke smoke
log "podman $(podman version --format '{{.Client.Version}}'), runtime $(podman info --format '{{.Host.OCIRuntime.Name}}'), storage $(podman info --format '{{.Store.GraphDriverName}}')"

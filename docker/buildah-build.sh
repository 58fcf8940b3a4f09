#!/bin/sh
# Builds docker/Dockerfile with Debian's buildah, without a Docker engine, on
# a Debian 12 base image made here by Debian's debootstrap:
#
#   docker/buildah-build.sh [--tag NAME] [--cache DIR] [--mirror URL]
#
# 1. The base: `debootstrap --variant=minbase bookworm` (only the Essential
#    and required packages plus apt), slimmed the way debian:12-slim is (no
#    documentation, manual pages or translations, now or in later apt runs;
#    no package lists or downloaded .deb files), as a tarball cached in
#    DIR (default build/container) so that later runs skip this step. Delete
#    the tarball to refresh it.
# 2. The tarball imported into buildah's storage, brought up to date
#    (apt-get upgrade: the security and stable updates since the point
#    release), as localhost/bnn-serve-base:bookworm-<first 12 hex of the
#    tarball's sha256>; kept there for later runs.
# 3. `buildah bud --isolation chroot --format docker` of docker/Dockerfile
#    with that base as DEBIAN_IMAGE, tagged NAME (default
#    localhost/bnn-serve:latest). chroot isolation needs no cgroups; the
#    docker format keeps HEALTHCHECK, which the OCI image format drops.
#
# Exit status: 0 built (the last stdout line is "built NAME"); 1 a step
# failed; 77 this machine cannot build images at all (not root, buildah or
# debootstrap missing, the Debian mirror unreachable): the reason is on
# stderr, starting "cannot build here:". Needs root; scripts/deps.sh test
# installs buildah and debootstrap.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
tag=localhost/bnn-serve:latest
cache="$root/build/container"
mirror=${BNN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
while [ $# -gt 0 ]; do
    case "$1" in
    --tag) tag=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    -h | --help) sed -n '2,25s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "buildah-build.sh: error: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

cannot() {
    echo "buildah-build.sh: cannot build here: $*" >&2
    exit 77
}
now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{ printf "%.1f", $1 - $2 }'; }

[ "$(id -u)" -eq 0 ] || cannot "needs root (debootstrap, and buildah without a rootless setup); running as uid $(id -u)"
for tool in buildah debootstrap curl; do
    command -v "$tool" >/dev/null 2>&1 || cannot "$tool is not installed (scripts/deps.sh test installs it)"
done
# debootstrap and both stages' apt-get need the mirror.
curl -fsS --max-time 20 -o /dev/null "$mirror/dists/bookworm/InRelease" 2>/dev/null ||
    cannot "the Debian mirror $mirror does not answer (GET dists/bookworm/InRelease failed)"

# ---- 1. the debootstrap base, cached ------------------------------------
# The name carries the recipe's version: a changed recipe below makes a new
# tarball instead of reusing an old one.
base_tar="$cache/bookworm-minbase-v1.tar"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -s "$base_tar" ]; then
    t0=$(now)
    rootfs="$cache/rootfs.tmp"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
        tail -n 20 "$cache/debootstrap.log" >&2
        echo "buildah-build.sh: error: debootstrap failed (log: $cache/debootstrap.log)" >&2
        exit 1
    }
    # Later dpkg runs (the Dockerfile's apt-get install) skip these paths;
    # copyright files stay, as the licences ask.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/bnn-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
    # apt keeps neither downloaded packages nor its binary caches, and
    # fetches no translations.
    cat >"$rootfs/etc/apt/apt.conf.d/bnn-slim" <<'EOF'
APT::Keep-Downloaded-Packages "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
    # The release, its updates and the security archive, as debian:12 has.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    (
        cd "$rootfs"
        find usr/share/doc -mindepth 1 ! -name copyright ! -type d -delete
        find usr/share/doc -mindepth 1 -type d -empty -delete
        rm -rf usr/share/man/* usr/share/info/* usr/share/groff/* usr/share/lintian/* usr/share/locale/*
        rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/*
        rm -f var/log/*.log var/log/apt/* var/cache/debconf/*-old var/lib/dpkg/*-old
    )
    # /dev is left empty: the runtime mounts its own.
    tar --numeric-owner --xattrs -C "$rootfs" --exclude='./dev/*' -cf "$base_tar.tmp" .
    mv "$base_tar.tmp" "$base_tar"
    rm -rf "$rootfs"
    echo "debootstrap base: $base_tar ($(du -m "$base_tar" | cut -f1) MB) in $(since "$t0") s"
else
    echo "debootstrap base: $base_tar (cached)"
fi

# ---- 2. imported as a base image ----------------------------------------
sum=$(sha256sum "$base_tar" | cut -c1-12)
base_image="localhost/bnn-serve-base:bookworm-$sum"
if ! buildah inspect --type image "$base_image" >/dev/null 2>&1; then
    t0=$(now)
    ctr=$(buildah from --pull=false --name "bnn-serve-base-$$" scratch)
    buildah add --quiet "$ctr" "$base_tar" / >/dev/null
    # The cached tarball is the point release as debootstrap found it; the
    # image gets the security and stable updates published since.
    buildah run --isolation chroot "$ctr" -- sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/log/alternatives.log /var/cache/debconf/*-old /var/lib/dpkg/*-old' || {
        buildah rm "$ctr" >/dev/null
        echo "buildah-build.sh: error: apt-get upgrade of the base failed" >&2
        exit 1
    }
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd bash --label org.opencontainers.image.base.name=debootstrap-minbase-bookworm "$ctr"
    buildah commit --quiet --rm --squash --format docker "$ctr" "$base_image" >/dev/null
    echo "base image: $base_image imported in $(since "$t0") s"
else
    echo "base image: $base_image (present)"
fi
flock -u 9

# ---- 3. the Dockerfile ---------------------------------------------------
t0=$(now)
buildah bud --isolation chroot --format docker --pull=false \
    --build-arg DEBIAN_IMAGE="$base_image" -f "$root/docker/Dockerfile" -t "$tag" "$root"
echo "buildah bud: $(since "$t0") s"
echo "built $tag"

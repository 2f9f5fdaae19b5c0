#!/usr/bin/env bash
# Build (once) a small arm64 Linux kernel with gpio-sim built in, for the
# GPIO backend's real-kernel test. The source is Debian's linux-source-6.1
# package; nothing is fetched from anywhere else.
#
# The image is cached under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/roomd-gpiosim/<sha256 of fragment>/Image
# and a warm cache skips the build entirely. The Image path is the only line
# printed on stdout; progress goes to stderr.
#
# Environment:
#   ROOMD_GPIOSIM_NO_INSTALL=1  never call apt-get (fail if a tool is missing)
#   ROOMD_GPIOSIM_JOBS=N        make -j N (default: nproc)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fragment="$here/kernel-arm64.fragment"
[ -r "$fragment" ] || { echo "build-kernel: fragment $fragment not readable" >&2; exit 1; }

hash="$(sha256sum "$fragment" | cut -c1-16)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/roomd-gpiosim"
out="$cache_root/$hash"
image="$out/Image"

log() { echo "build-kernel: $*" >&2; }

if [ -s "$image" ]; then
	log "warm cache: $image"
	echo "$image"
	exit 0
fi

# --- tools ------------------------------------------------------------------
need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have aarch64-linux-gnu-gcc || need_pkgs+=(gcc-aarch64-linux-gnu)
have make || need_pkgs+=(build-essential)
have gcc || need_pkgs+=(build-essential)
have flex || need_pkgs+=(flex)
have bison || need_pkgs+=(bison)
have bc || need_pkgs+=(bc)
have cpio || need_pkgs+=(cpio)
have qemu-system-aarch64 || need_pkgs+=(qemu-system-arm)
[ -e /usr/include/libelf.h ] || need_pkgs+=(libelf-dev)
[ -e /usr/include/openssl/ssl.h ] || need_pkgs+=(libssl-dev)
src_tar="$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n1 || true)"
[ -n "$src_tar" ] || need_pkgs+=(linux-source-6.1)

if [ "${#need_pkgs[@]}" -gt 0 ]; then
	if [ "${ROOMD_GPIOSIM_NO_INSTALL:-}" = 1 ]; then
		log "missing packages: ${need_pkgs[*]} (ROOMD_GPIOSIM_NO_INSTALL=1)"
		exit 1
	fi
	apt=(apt-get)
	[ "$(id -u)" = 0 ] || apt=(sudo apt-get)
	log "installing: ${need_pkgs[*]}"
	"${apt[@]}" update -qq >&2
	DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
	src_tar="$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n1 || true)"
fi
[ -n "$src_tar" ] || { log "no /usr/src/linux-source-6.1.tar.* after install"; exit 1; }

# --- build --------------------------------------------------------------------
# Work in a temp dir beside the cache and move the Image in only on success,
# so an interrupted build never leaves a half-written cache entry.
mkdir -p "$cache_root"
work="$(mktemp -d "$cache_root/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
log "unpacking $src_tar into $work"
tar -C "$work" -xf "$src_tar"
ksrc="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'linux-source-*' | head -n1)"
[ -n "$ksrc" ] || { log "tarball $src_tar has no linux-source-* directory"; exit 1; }

jobs="${ROOMD_GPIOSIM_JOBS:-$(nproc)}"
kmake=(make -C "$ksrc" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- -j"$jobs")
log "configuring (tinyconfig + $(basename "$fragment"))"
"${kmake[@]}" tinyconfig >&2
(cd "$ksrc" && ARCH=arm64 scripts/kconfig/merge_config.sh -m .config "$fragment") >&2
"${kmake[@]}" olddefconfig >&2
for opt in CONFIG_GPIO_SIM CONFIG_GPIO_CDEV CONFIG_CONFIGFS_FS CONFIG_FUTEX CONFIG_EPOLL CONFIG_BLK_DEV_INITRD; do
	grep -q "^$opt=y" "$ksrc/.config" || { log "$opt did not survive olddefconfig"; exit 1; }
done
log "building Image with -j$jobs"
"${kmake[@]}" Image >&2

mkdir -p "$out"
cp "$ksrc/.config" "$out/config"
cp "$ksrc/arch/arm64/boot/Image" "$out/Image.tmp"
mv "$out/Image.tmp" "$image"
log "built $image ($(stat -c %s "$image") bytes) in $(($(date +%s) - start)) s"
echo "$image"

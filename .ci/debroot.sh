#!/usr/bin/env bash
# Make (once) a minimal Debian root for the package tests in packaging/: the
# amd64 package is installed into it with dpkg, and roomd runs from it.
#
#   debootstrap --variant=minbase --include=systemd <this machine's release>
#
# from the mirror apt is configured with (the only one reachable here),
# for this machine's architecture. systemd is there for systemd-sysusers,
# systemd-tmpfiles and the unit files systemd-analyze verify needs; it does
# not run (nothing in the root is PID 1).
#
# The root is cached as a tarball under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/roomd-debroot/<key>.tar
# keyed by everything that goes into it (release, architecture, mirror,
# variant, packages and this script), so a warm run only reads the tarball
# (about a second) and a cold one takes a minute or two. Its path is the only
# line printed on stdout; progress goes to stderr. Older roots are removed.
#
# Environment:
#   ROOMD_DEBROOT_NO_INSTALL=1  never call apt-get (fail if debootstrap is missing)
set -euo pipefail

log() { echo "debroot: $*" >&2; }

variant=minbase
include=systemd

[ -r /etc/os-release ] || { log "no /etc/os-release: not a Debian system"; exit 1; }
# shellcheck disable=SC1091
. /etc/os-release
suite="${VERSION_CODENAME:-}"
if [ "${ID:-}" != debian ] || [ -z "$suite" ]; then
	log "this is ${PRETTY_NAME:-an unknown system}, not a Debian release with a code name: no mirror to debootstrap from"
	exit 1
fi
arch="$(dpkg --print-architecture)"

# The first Debian mirror apt uses for $suite main: deb822 .sources files
# and one-line .list files alike.
mirror="$(
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -r "$f" ] || continue
			awk -v suite="$suite" '
				function done_par() {
					if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") &&
					    (" " comps " ") ~ / main / && enabled != "no" && uris != "")
						{ split(uris, u, " "); print u[1] }
					types = uris = suites = comps = enabled = ""
				}
				/^[ \t]*#/ { next }
				/^[ \t]*$/ { done_par(); next }
				{
					k = tolower($1); sub(/:$/, "", k); $1 = ""; sub(/^ +/, "")
					if (k == "types") types = $0
					else if (k == "uris") uris = $0
					else if (k == "suites") suites = $0
					else if (k == "components") comps = $0
					else if (k == "enabled") enabled = tolower($0)
				}
				END { done_par() }' "$f"
		done
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -r "$f" ] || continue
			sed -e 's/\[[^]]*\]//' "$f" | awk -v suite="$suite" '
				$1 == "deb" && $3 == suite { for (i = 4; i <= NF; i++) if ($i == "main") { print $2; next } }'
		done
	} | head -n1
)"
if [ -z "$mirror" ]; then
	log "apt has no mirror for $suite main (read /etc/apt/sources.list and sources.list.d)"
	exit 1
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key="$(printf '%s\n' "$suite" "$arch" "$mirror" "$variant" "$include" | cat - "$here/debroot.sh" | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/roomd-debroot"
tarball="$cache/$suite-$arch-$key.tar"

if [ -s "$tarball" ]; then
	log "warm cache: $tarball"
	echo "$tarball"
	exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
	if [ "${ROOMD_DEBROOT_NO_INSTALL:-}" = 1 ]; then
		log "debootstrap is missing (ROOMD_DEBROOT_NO_INSTALL=1)"
		exit 1
	fi
	apt=(apt-get)
	[ "$(id -u)" = 0 ] || apt=(sudo apt-get)
	log "installing debootstrap"
	"${apt[@]}" update -qq >&2
	DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends debootstrap >&2
fi
if [ "$(id -u)" != 0 ]; then
	log "debootstrap needs root"
	exit 1
fi

mkdir -p "$cache"
work="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "cold cache: debootstrap --variant=$variant --include=$include $suite from $mirror ($arch)"
start=$(date +%s)
if ! debootstrap --variant="$variant" --include="$include" --arch="$arch" "$suite" "$work/root" "$mirror" >"$work/log" 2>&1; then
	tail -n 30 "$work/log" >&2
	log "debootstrap failed (full log above, last 30 lines)"
	exit 1
fi
chroot "$work/root" apt-get clean
rm -rf "$work/root/var/lib/apt/lists/"*
tar --numeric-owner -C "$work/root" -cf "$work/root.tar" .
# Keep one root: drop those made for other keys.
find "$cache" -maxdepth 1 -name '*.tar' ! -name "$(basename "$tarball")" -delete
mv "$work/root.tar" "$tarball"
log "made $tarball ($(du -h "$tarball" | cut -f1)) in $(($(date +%s) - start)) s"
echo "$tarball"

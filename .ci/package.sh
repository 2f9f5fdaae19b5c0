#!/usr/bin/env bash
# Build roomd's Debian packages with nfpm (pinned in packaging/nfpm.mod):
#
#   bash .ci/package.sh                   # dist/roomd_<version>_{amd64,arm64,armhf}.deb
#                                         # dist/guardboard_<version>_{amd64,arm64,armhf}.deb
#                                         # dist/roompager_<version>_{amd64,arm64,armhf}.deb
#   bash .ci/package.sh --print-version   # the version it would build
#
# roomd (packaging/nfpm.yaml) is the room's daemon and visitctl, for the Pi
# beside each room; guardboard (packaging/guardboard/nfpm.yaml) is the
# guard station board, for the central machine; roompager
# (packaging/roompager/nfpm.yaml) pages the site's paging system over
# ESPA 4.4.4. All get the same version; none depends on another.
#
# arm64 is for 64-bit Raspberry Pi OS (Pi 3, 4, 5), armhf is built for
# ARMv6 (GOARM=6) so that one package runs on every Pi from the Zero up, and
# amd64 is for laptops (the simulator backend), the usual central machine,
# and CI.
#
# The version comes from git: a tag v1.2.3 gives 1.2.3, v1.2.3-rc.1 gives
# 1.2.3~rc.1, 4 commits after v1.2.3 give 1.2.3+4.g<sha>; without a tag it
# is 0.0.0~git<commit time, UTC>.<sha>. Uncommitted changes add +dirty.
# roomd --version, visitctl --version and guardboard version print the same
# string.
#
# Environment:
#   ROOMD_VERSION     the version to build instead (must be a Debian version)
#   ROOMD_ARCHS       the architectures, default "amd64 arm64 armhf"
#   ROOMD_DIST        output directory, default dist
#   ROOMD_MAINTAINER  the Maintainer field, default "roomd maintainers <roomd@example.org>"
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

version() {
	if [ -n "${ROOMD_VERSION:-}" ]; then
		echo "$ROOMD_VERSION"
		return
	fi
	if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
		echo "package: not a git checkout with a commit; set ROOMD_VERSION" >&2
		return 1
	fi
	local d v
	if d="$(git describe --tags --match 'v[0-9]*' 2>/dev/null)"; then
		if [[ $d =~ ^v(.+)-([0-9]+)-g([0-9a-f]+)$ ]]; then
			v="${BASH_REMATCH[1]//-/\~}+${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}"
		else
			v="${d#v}"
			v="${v//-/\~}"
		fi
	else
		v="0.0.0~git$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S).$(git rev-parse --short=7 HEAD)"
	fi
	if ! git diff --quiet HEAD -- 2>/dev/null; then
		v="$v+dirty"
	fi
	echo "$v"
}

if [ "${1:-}" = --print-version ]; then
	version
	exit 0
fi
[ $# -eq 0 ] || { echo "usage: $0 [--print-version]" >&2; exit 2; }

ver="$(version)"
if command -v dpkg >/dev/null 2>&1 && ! dpkg --validate-version "$ver" 2>/dev/null; then
	echo "package: $ver is not a Debian version: $(dpkg --validate-version "$ver" 2>&1)" >&2
	exit 1
fi
archs="${ROOMD_ARCHS:-amd64 arm64 armhf}"
dist="${ROOMD_DIST:-dist}"
maintainer="${ROOMD_MAINTAINER:-roomd maintainers <roomd@example.org>}"
# Reproducible: file times and the changelog date are the commit's.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dist"
ldflags="-s -w -X github.com/roomd/roomd/buildinfo.version=$ver"

# --- arch-independent files: man pages, help text, changelog ---------------
shared="$work/shared"
mkdir -p "$shared"
go build -trimpath -ldflags="$ldflags" -o "$work/host/" ./cmd/roomd ./cmd/visitctl ./cmd/guardboard ./cmd/roompager
"$work/host/roompager" help >"$shared/roompager-help.txt"
"$work/host/roomd" help >"$shared/roomd-help.txt"
"$work/host/visitctl" help >"$shared/visitctl-help.txt"
{
	"$work/host/guardboard" help
	echo
	"$work/host/guardboard" serve -h 2>&1
} >"$shared/guardboard-help.txt"

# roff escapes: backslash, a leading dot or quote, and '-' as a minus.
roff() { sed -e 's/\\/\\e/g' -e 's/^\([.'"'"']\)/\\\&\1/' -e 's/-/\\-/g'; }
mandate="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)"

manpage() { # name summary description-paragraph files-section see-also package
	local name="$1" upper
	upper="$(echo "$name" | tr a-z A-Z)"
	{
		printf '.TH %s 1 "%s" "roomd %s" "roomd"\n' "$upper" "$mandate" "$(printf '%s' "$ver" | roff)"
		printf '.SH NAME\n%s \\- %s\n' "$name" "$2"
		printf '.SH DESCRIPTION\n%s\n' "$3"
		printf '.SH USAGE\n.nf\n'
		roff <"$shared/$name-help.txt"
		printf '.fi\n'
		printf '%s\n' "$4"
		printf '.SH SEE ALSO\n%s\n' "$5"
		printf 'the documentation in\n.IR /usr/share/doc/%s/ .\n' "$6"
	} | gzip -9n >"$shared/$name.1.gz"
}
manpage roomd "one visit room's sensors, visit timer and alerts, over MQTT" \
	"roomd runs on a Raspberry Pi beside a private visit room. It reads the door contact, the bolt sensor, presence sensors and panic buttons through GPIO (or a simulated room), enforces the visit timer and the unlocked\\-door rule, and reports to a booking system and guard consoles over MQTT. It never locks a door." \
	'.SH FILES
.TP
.I /etc/roomd/roomd.yaml
the room'"'"'s configuration; check it with \fBroomd check\-config /etc/roomd/roomd.yaml\fR
.TP
.I /var/lib/roomd
the room'"'"'s state and journal; a purge of the package keeps it
.TP
.I /usr/share/doc/roomd/examples/roomd.example.yaml
every configuration key with its default
.SH EXIT STATUS
0 on success, 1 on an error (every problem of a config is printed first), 2 on a usage error.' \
	'.BR visitctl (1),' roomd
manpage visitctl "start, extend and end visits, acknowledge alerts, watch every room" \
	"visitctl talks to the rooms over the MQTT broker: it sends a command to one room and waits for its reply, or shows a live board of every room for guards." \
	'.SH EXIT STATUS
0 ok, 1 refused or failed, 2 usage, 3 no reply in time, 4 broker unreachable.' \
	'.BR roomd (1),' roomd
manpage guardboard "the guard station board: every visit room on one screen, in a browser" \
	"guardboard serve is the guard station board: a web server on the control room's central machine that connects to the rooms' MQTT broker as the identity guard\-station and shows guards every room in a browser, the most urgent first, with a sound that rings until an alert is acknowledged. Guards log in with accounts kept in a file of bcrypt hashes (guardboard accounts). guardboard \-demo runs simulated rooms and the board on one machine." \
	'.SH ENVIRONMENT
Every flag of \fBguardboard serve\fR may be given instead by an environment variable: \fBGUARDBOARD_\fR and the flag'"'"'s name in capitals, \- as _ (\fB\-\-broker\-password\-file\fR is \fBGUARDBOARD_BROKER_PASSWORD_FILE\fR). A flag on the command line wins over its variable; an empty variable counts as unset. The unit \fBguardboard.service\fR reads them from \fI/etc/default/guardboard\fR.
.SH FILES
.TP
.I /etc/default/guardboard
the board'"'"'s settings, with what each means and the steps to start the board; after a change: \fBsystemctl restart guardboard\fR
.TP
.I /etc/guardboard/accounts
the guards'"'"' accounts, \fIoperator id\fB:\fIbcrypt hash\fR a line (root:guardboard 0640); edit it with \fBguardboard accounts add\fR|\fBpasswd\fR|\fBremove\fR \fIID\fR \fB\-\-accounts /etc/guardboard/accounts\fR
.TP
.I /etc/guardboard/mqtt\-password
the broker password of guard\-station (root:guardboard 0640)
.TP
.I /etc/guardboard/ca.crt
the CA of the broker'"'"'s certificate
.TP
.I /var/lib/guardboard/marks.json
where the board stands in every room'"'"'s records; a purge of the package deletes it
.SH EXIT STATUS
0 on success; 2 on a usage error or a bad setting; 1 on another error, such as a file a setting names that cannot be read. Both name the flag or variable.' \
	'.BR systemd.exec (5),' guardboard

manpage roompager "pages the site's DECT handsets and pagers with the visit rooms' alerts over ESPA 4.4.4" \
	"roompager run is a gateway on the site's network: it reads the rooms' alerts from their MQTT broker as the identity roompager and hands each to the site's paging system over a serial line (a USB\-RS232 adapter) with the ESPA 4.4.4 protocol, as the control station of the link: the call address from its routes, high priority for critical alerts, a short message in the site's language, again while unacknowledged. It publishes whether the paging system answers on the retained topic \fIbase\fB/_pagers/\fIgateway\fB/status\fR, which the guard station board shows. roompager check\-config prints the effective config or every problem in it." \
	'.SH FILES
.TP
.I /etc/roompager/roompager.yaml
the gateway'"'"'s config: broker, serial line, ESPA addresses and the routes from alerts to call addresses; after a change: \fBsystemctl restart roompager\fR
.TP
.I /etc/roompager/mqtt\-password
the broker password of roompager (owned by roompager, 0600)
.SH EXIT STATUS
0 on success, 1 on an error (every problem of a config is printed first), 2 on a usage error.' \
	'.BR guardboard (1),' roompager

changelog() { # package
	printf '%s (%s) unstable; urgency=medium\n\n' "$1" "$ver"
	printf '  * Built from commit %s.\n' "$commit"
	printf '  * The changes are in the project'"'"'s git history.\n\n'
	printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
}
changelog roomd | gzip -9n >"$shared/changelog.gz"
changelog guardboard | gzip -9n >"$shared/guardboard-changelog.gz"
changelog roompager | gzip -9n >"$shared/roompager-changelog.gz"

# license_text prints a license file; the full Apache License 2.0 becomes a
# pointer to Debian's copy (with whatever the file says before it).
license_text() {
	if grep -q 'TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION' "$1"; then
		awk '/^[[:space:]]*Apache License[[:space:]]*$/ { exit } { print }' "$1"
		printf 'Apache License, Version 2.0.\nOn Debian systems its full text is in /usr/share/common-licenses/Apache-2.0.\n'
	else
		cat "$1"
	fi
}

# copyright: roomd's own notice, then every Go module linked into the
# binaries (as `go version -m` lists them) with its license text.
copyright() { # binaries...
	cat packaging/copyright
	local modcache goroot
	modcache="$(go env GOMODCACHE)"
	goroot="$(go env GOROOT)"
	printf '\nThe binaries are statically linked. They include the Go standard library\nand these Go modules, each under the license that follows it.\n'
	printf '\n%s\nGo standard library (%s)\n\n' "----------------------------------------------------------------------" "$(go env GOVERSION)"
	cat "$goroot/LICENSE"
	go version -m "$@" | awk '$1 == "dep" { print $2, $3 }' | sort -u | while read -r mod v; do
		# The module cache spells upper-case letters as !lower-case.
		dir="$modcache/$(printf '%s' "$mod" | sed 's/[A-Z]/!\L&/g')@$v"
		printf '\n%s\n%s %s\n' "----------------------------------------------------------------------" "$mod" "$v"
		found=0
		for f in "$dir"/LICENSE* "$dir"/LICENCE* "$dir"/COPYING* "$dir"/NOTICE* "$dir"/epl-v* "$dir"/edl-v*; do
			[ -f "$f" ] || continue
			printf '\n[%s]\n\n' "$(basename "$f")"
			license_text "$f"
			found=1
		done
		if [ "$found" = 0 ]; then
			echo "package: no license file for $mod $v in $dir" >&2
			return 1
		fi
	done
}

# --- the packages of each architecture -------------------------------------
for arch in $archs; do
	goarm=""
	case "$arch" in
	amd64) goarch=amd64 nfpm_arch=amd64 ;;
	arm64) goarch=arm64 nfpm_arch=arm64 ;;
	armhf) goarch=arm goarm=6 nfpm_arch=arm6 ;; # nfpm writes arm6 as armhf
	*) echo "package: unknown architecture $arch (want amd64, arm64 or armhf)" >&2; exit 1 ;;
	esac
	stage="$work/$arch"
	mkdir -p "$stage"
	cp "$shared"/* "$stage/"
	env CGO_ENABLED=0 GOOS=linux GOARCH="$goarch" GOARM="$goarm" \
		go build -trimpath -ldflags="$ldflags" -o "$stage/" ./cmd/roomd ./cmd/visitctl ./cmd/guardboard ./cmd/roompager
	copyright "$stage/roomd" "$stage/visitctl" >"$stage/copyright"
	copyright "$stage/guardboard" >"$stage/guardboard-copyright"
	copyright "$stage/roompager" >"$stage/roompager-copyright"
	for pkg in roomd:packaging/nfpm.yaml guardboard:packaging/guardboard/nfpm.yaml roompager:packaging/roompager/nfpm.yaml; do
		out="$dist/${pkg%%:*}_${ver}_${arch}.deb"
		rm -f "$out"
		ROOMD_STAGE="$stage" ROOMD_VERSION="$ver" ROOMD_NFPM_ARCH="$nfpm_arch" \
			ROOMD_MAINTAINER="$maintainer" ROOMD_HOMEPAGE="${ROOMD_HOMEPAGE:-https://github.com/roomd/roomd}" \
			go tool -modfile=packaging/nfpm.mod nfpm package --config "${pkg#*:}" --packager deb --target "$out" >&2
		echo "$out"
	done
done

#!/bin/sh
# pi-card-latency.sh: run on the Raspberry Pi that will run roomd, with the
# card that will hold its journal, to compare the card with the budget of
# docs/performance.md ("Edge to guard with a slow card"). It prints the same
# table as the injected-latency run there, for this card: a panic's edge ->
# guard latency beside the same-run floor, and the journal's measured syncs
# (p50, p99, longest; roomd commission reports the same probe of the card).
#
# Needs: mosquitto (apt-get install mosquitto), and roombench built for the
# Pi on a development machine:
#   GOOS=linux GOARCH=arm64 go build -o roombench ./cmd/roombench   # Pi 3/4/5, 64-bit OS
#   GOOS=linux GOARCH=arm GOARM=6 go build -o roombench ./cmd/roombench  # Pi Zero, 32-bit
# copied next to this script. Stop roomd first (systemctl stop roomd): the
# run takes both CPU and the card, for about a minute.
#
# Usage: sh pi-card-latency.sh [DIR] [SAMPLES]
#   DIR      a directory on the card that will hold the journal (default
#            /var/lib/roomd-bench; never a tmpfs such as /tmp or /dev/shm)
#   SAMPLES  panic presses per path (default 200)
set -eu

dir=${1:-/var/lib/roomd-bench}
samples=${2:-200}
here=$(cd "$(dirname "$0")" && pwd)
bench=${ROOMBENCH:-$here/roombench}

[ -x "$bench" ] || { echo "pi-card-latency: no roombench at $bench (see the header of this script)" >&2; exit 2; }
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || { echo "pi-card-latency: install mosquitto first (apt-get install mosquitto)" >&2; exit 2; }
mkdir -p "$dir"
fstype=$(stat -f -c %T "$dir")
case $fstype in
tmpfs|ramfs) echo "pi-card-latency: $dir is on $fstype, not on the card; give a directory on the card" >&2; exit 2 ;;
esac

echo "card: $(findmnt -n -o SOURCE,FSTYPE,OPTIONS --target "$dir" 2>/dev/null || echo "$dir ($fstype)")"
echo "machine: $(tr -d '\0' </proc/device-tree/model 2>/dev/null || uname -m), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# roombench puts its rooms' journals under TMPDIR: on the card, here. No
# latency is injected (--sync-delay 0): every sync is the card's own.
TMPDIR=$dir "$bench" --samples "$samples" --sync-delay 0 latency
status=$?
echo
echo "Compare the p99 rows with the target (debounce + 1.5 x floor p99) and the"
echo "journal's sync p99 with 250 ms, above which roomd raises journal_sync."
exit $status

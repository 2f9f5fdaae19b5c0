#!/usr/bin/env bash
# CI entry for the GPIO backend's real-kernel test: build the gpio-sim
# kernel (cached by fragment hash; ~2-7 min cold, instant warm), then boot
# the test VM once.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
start=$(date +%s)
kernel="$("$here/build-kernel.sh")"
echo "gpiosim: kernel $kernel ready after $(($(date +%s) - start)) s" >&2
"$here/run-vm.sh" "$kernel"
echo "gpiosim: done in $(($(date +%s) - start)) s" >&2

#!/usr/bin/env bash
# Boot the GPIO backend's real-kernel test VM once and require PASS.
#
#   .ci/gpiosim/run-vm.sh [path/to/Image]
#
# Without an argument the kernel is the cache entry build-kernel.sh writes
# (it is not built here). The work is done by TestGPIOBackendOnRealKernel
# (device/gpio/vmtest): it cross-builds the vmtest program for linux/arm64
# with CGO_ENABLED=0 as roomd ships, packs it as /init of a gzip newc
# initramfs, boots qemu-system-aarch64 (TCG, hard timeout) and parses the
# ROOMD-VMTEST marker; on FAIL or timeout it prints the console and fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ $# -gt 0 ]; then
	export ROOMD_GPIOSIM_KERNEL="$1"
fi
# An explicit run must not skip: a missing kernel or qemu is a failure.
export ROOMD_GPIOSIM_REQUIRE=1
cd "$root"
exec go test -count=1 -v -run '^TestGPIOBackendOnRealKernel$' ./device/gpio/vmtest/

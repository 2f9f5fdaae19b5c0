package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/device/gpio/vmtest/vm"
	"github.com/roomd/roomd/internal/testtier"
)

const fragment = "../../../.ci/gpiosim/kernel-arm64.fragment"

// kernelImage finds the gpio-sim kernel: $ROOMD_GPIOSIM_KERNEL, else the
// cache entry .ci/gpiosim/build-kernel.sh writes for the current fragment.
func kernelImage(t *testing.T) string {
	if p := os.Getenv("ROOMD_GPIOSIM_KERNEL"); p != "" {
		return p
	}
	frag, err := os.ReadFile(fragment)
	require.NoError(t, err, "read kernel fragment")
	sum := sha256.Sum256(frag)
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		require.NoError(t, err)
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "roomd-gpiosim", hex.EncodeToString(sum[:])[:16], "Image")
}

// required reports whether .ci/gpiosim/run-vm.sh asked for this test
// (ROOMD_GPIOSIM_REQUIRE=1): it runs whatever the tier, and must not skip.
func required() bool { return os.Getenv("ROOMD_GPIOSIM_REQUIRE") == "1" }

// unavailable skips, or fails when CI=true or ROOMD_GPIOSIM_REQUIRE=1: CI
// builds the kernel first, so a missing piece there is a broken pipeline,
// not a bare machine.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if required() {
		t.Fatalf(format, args...)
	}
	testtier.Missing(t, format+" (run .ci/gpiosim/test.sh)", args...)
}

// TestGPIOBackendOnRealKernel builds this program for linux/arm64 as roomd
// ships, boots it as /init of a qemu VM with gpio-sim, and requires its
// PASS marker.
func TestGPIOBackendOnRealKernel(t *testing.T) {
	if !required() {
		testtier.Slow(t, "boots a VM")
	}
	if raceEnabled {
		// The program in the VM is static (CGO_ENABLED=0) and so cannot be
		// race-built; the host side has nothing to race. CI runs it without
		// -race and through .ci/gpiosim/test.sh.
		t.Skip("nothing to race-check: the VM program cannot be built with -race")
	}
	kernel := kernelImage(t)
	if _, err := os.Stat(kernel); err != nil {
		unavailable(t, "gpio-sim kernel not built: %v", err)
	}
	qemu, err := exec.LookPath("qemu-system-aarch64")
	if err != nil {
		unavailable(t, "qemu-system-aarch64 not installed: %v", err)
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "init")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build vmtest for linux/arm64:\n%s", out)
	init, err := os.ReadFile(bin)
	require.NoError(t, err)

	initrd := filepath.Join(dir, "initrd.gz")
	f, err := os.Create(initrd)
	require.NoError(t, err)
	require.NoError(t, vm.Initramfs(f, init))
	require.NoError(t, f.Close())

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	res, err := vm.Boot(ctx, vm.Config{QEMU: qemu, Kernel: kernel, Initrd: initrd, Timeout: 3 * time.Minute})
	if err != nil || res.Outcome != vm.OutcomePass {
		t.Logf("console:\n%s", res.Console)
	}
	require.NoError(t, err)
	for _, line := range strings.Split(res.Console, "\n") {
		if strings.HasPrefix(line, "vmtest:") {
			t.Log(strings.TrimRight(line, "\r"))
		}
	}
	t.Logf("qemu start to marker %s, qemu total %s", res.ToMarker.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	switch res.Outcome {
	case vm.OutcomeSkip:
		unavailable(t, "vmtest skipped: %s", res.Reason)
	case vm.OutcomeFail:
		t.Fatalf("%s FAIL in the VM: %s", vm.Marker, res.Reason)
	}
	require.Equal(t, vm.OutcomePass, res.Outcome)
}

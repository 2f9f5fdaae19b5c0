// Command vmtest checks roomd's GPIO backend against a real Linux kernel.
//
// It is built for linux/arm64 exactly as roomd ships (static, CGO_ENABLED=0)
// and runs as /init of a small qemu VM whose kernel has gpio-sim built in
// (see .ci/gpiosim). As PID 1 it mounts proc, sysfs, devtmpfs and configfs,
// creates a simulated GPIO chip, opens the room through package device/gpio
// and plays the outside world by writing the simulated lines' pull
// attributes. Then it runs one commissioning pass (package commission) on
// the same lines, playing the installer: it pulls each input line when
// asked and watches each output line when asked about it. It prints exactly one marker line, "ROOMD-VMTEST PASS" or
// "ROOMD-VMTEST FAIL: <reason>", and then reboots, which ends the VM.
//
// The host side is TestGPIOBackendOnRealKernel in this directory; run it
// with .ci/gpiosim/test.sh.
package main

// Command vmtest checks roomd's GPIO backend against a real Linux kernel.
//
// It is built for linux/arm64 exactly as roomd ships (static, CGO_ENABLED=0)
// and runs as /init of a small qemu VM whose kernel has gpio-sim built in
// (see .ci/gpiosim). As PID 1 it mounts proc, sysfs, devtmpfs and configfs,
// creates a simulated GPIO chip, opens the room through package device/gpio
// and plays the outside world by writing the simulated lines' pull
// attributes. Then it runs one commissioning pass (package commission) on
// the same lines, playing the installer: it pulls each input line when
// asked and watches each output line when asked about it. Last it runs
// roomd's loop (package daemon) in a process of its own on a UPS's status
// lines and the healthy output: the pulse must stop within 2 s of the loop
// being stopped (SIGSTOP) and resume after SIGCONT, mains lost and the
// battery low must reach the journal, and the battery low must stop the
// loop cleanly. It prints exactly one marker line, "ROOMD-VMTEST PASS" or
// "ROOMD-VMTEST FAIL: <reason>", and then reboots, which ends the VM.
//
// The host side is TestGPIOBackendOnRealKernel in this directory; run it
// with .ci/gpiosim/test.sh.
package main

// Package packaging holds roomd's Debian packaging and its tests; it has no
// code of its own.
//
// .ci/package.sh builds the packages with nfpm (pinned in nfpm.mod, apart
// from roomd's own dependencies) from nfpm.yaml, the maintainer scripts
// postinst, prerm and postrm, the conffile roomd.yaml and the files under
// configs/. The tests build them and check what an installer meets: lintian,
// systemd-analyze verify, and the amd64 package installed with dpkg into a
// Debian root made by debootstrap (.ci/debroot.sh), where a simulated room
// runs from the installed files against a real mosquitto, survives an
// upgrade in the middle of a visit, and a purge keeps its journal.
//
// Those tests are in the slow tier (they run under CI=true or ROOMD_SLOW=1)
// and need root, debootstrap, lintian and mosquitto: they skip without
// them, and fail instead when CI=true.
package packaging

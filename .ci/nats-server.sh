#!/usr/bin/env bash
# Builds the NATS server that the clustered centre's tests run (configs/nats,
# roombench's sites suite with --centre nats), at the version pinned in
# configs/nats/nats-server.mod, into the cache directory where the tests
# look for it (internal/siteworld's NATSServer: os.UserCacheDir()/roomd).
# A test builds it itself when it is missing; building it here first keeps
# that half-minute out of the tests' time limits. Cached by version.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(awk '$1 == "github.com/nats-io/nats-server/v2" { print $2 }' configs/nats/nats-server.mod)
if [ -z "$version" ]; then
	echo "nats-server.sh: no nats-server version in configs/nats/nats-server.mod" >&2
	exit 1
fi
bin="${XDG_CACHE_HOME:-$HOME/.cache}/roomd/nats-server-$version"
if [ -x "$bin" ]; then
	echo "nats-server.sh: $bin ($("$bin" --version))"
	exit 0
fi
mkdir -p "$(dirname "$bin")"
go build -modfile=configs/nats/nats-server.mod -o "$bin.tmp" github.com/nats-io/nats-server/v2
mv "$bin.tmp" "$bin"
echo "nats-server.sh: built $bin ($("$bin" --version))"

#!/usr/bin/env bash
# Cross-build every command under cmd/ for the Raspberry Pi targets exactly as
# roomd ships (static, stripped) into dist/<os>-<arch>[v<arm>]/, then print the
# binary sizes as a table. Works with whatever commands exist under cmd/.
#
#   .ci/cross-build.sh            # all targets
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cmds=()
for d in cmd/*/; do
	[ -d "$d" ] || continue
	ls "$d"*.go >/dev/null 2>&1 || continue
	cmds+=("$(basename "$d")")
done
if [ "${#cmds[@]}" -eq 0 ]; then
	echo "cross-build: no commands under cmd/" >&2
	exit 1
fi

# target label, GOARCH, GOARM
targets=(
	"linux-armv6 arm 6"
	"linux-armv7 arm 7"
	"linux-arm64 arm64 -"
)

for t in "${targets[@]}"; do
	read -r label arch arm <<<"$t"
	out="dist/$label"
	mkdir -p "$out"
	env=(GOOS=linux GOARCH="$arch" CGO_ENABLED=0)
	[ "$arm" = - ] || env+=(GOARM="$arm")
	for c in "${cmds[@]}"; do
		if ! env "${env[@]}" go build -trimpath -ldflags="-s -w" -o "$out/$c" "./cmd/$c"; then
			echo "cross-build: $c for $label failed" >&2
			exit 1
		fi
	done
done

# Size table (bytes, and MiB to one decimal).
printf '| %-12s' command
for t in "${targets[@]}"; do printf '| %-22s' "${t%% *}"; done
printf "|\n|%s" "-------------"
for t in "${targets[@]}"; do printf "|%s" "-----------------------"; done
printf '|\n'
for c in "${cmds[@]}"; do
	printf '| %-12s' "$c"
	for t in "${targets[@]}"; do
		s=$(stat -c %s "dist/${t%% *}/$c")
		printf '| %-22s' "$(printf '%d (%s MiB)' "$s" "$(awk -v s="$s" 'BEGIN{printf "%.1f", s/1048576}')")"
	done
	printf '|\n'
done

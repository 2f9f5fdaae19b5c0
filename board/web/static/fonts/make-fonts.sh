#!/usr/bin/env bash
# Makes the board's embedded font: DejaVu Sans (Debian's fonts-dejavu-core),
# regular and bold, cut down to what the board shows: ASCII, Latin-1 and
# Latin Extended-A (every letter of English, Italian, German, French and
# Spanish, and of most European names), punctuation, and the symbols the
# page uses. board/font_test.go fails when the page or a catalogue uses a
# character these files lack. Needs python3-fonttools.
set -euo pipefail
cd "$(dirname "$0")"
src=/usr/share/fonts/truetype/dejavu
unicodes="U+0020-007E,U+00A0-017F,U+2010-2027,U+2030-203A,U+2044,U+20AC,U+2190-2195,U+21BB,U+2212,U+2298,U+2297,U+25A0-25FF,U+2605,U+2606,U+26A0,U+2713-2718,U+2715"
for pair in "DejaVuSans.ttf board-sans.ttf" "DejaVuSans-Bold.ttf board-sans-bold.ttf"; do
	set -- $pair
	/usr/bin/python3 -m fontTools.subset "$src/$1" --unicodes="$unicodes" --output-file="$2" \
		--layout-features='kern,liga' --no-hinting --desubroutinize --name-IDs='*' --name-legacy
done
cp /usr/share/doc/fonts-dejavu-core/copyright LICENSE-DejaVu 2>/dev/null || true
ls -l board-sans*.ttf

#!/usr/bin/env bash
# check_architecture.sh — docs/architecture.md names every production file
# with its one job (issue 10: "That file names every file with its one
# job"). Without a check the table drifts as files are added or split.
#
# Production code = the .c and .h files under engine/, lua/, server/, cli/.
# A file counts as named when its file name appears in docs/architecture.md
# between backquotes (`name.c`). Fails (exit 1) listing every file that is
# not; exit 2 when the document is missing. Usage:
# scripts/check_architecture.sh [ROOT] (default: this repository).
set -euo pipefail
ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
DOC="$ROOT/docs/architecture.md"
[ -f "$DOC" ] || { echo "check_architecture: no $DOC" >&2; exit 2; }
cd "$ROOT"
missing=0
n=0
while IFS= read -r f; do
    n=$((n + 1))
    b=${f##*/}
    if ! grep -qF "\`$b\`" "$DOC" && ! grep -qF "/$b\`" "$DOC"; then
        echo "check_architecture: $f is not named in docs/architecture.md (add it with its job)" >&2
        missing=$((missing + 1))
    fi
done < <(find engine lua server cli -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort)
if [ "$missing" -gt 0 ]; then
    echo "check_architecture: $missing of $n production files not named" >&2
    exit 1
fi
echo "check_architecture: ok ($n production files, each named in docs/architecture.md)"

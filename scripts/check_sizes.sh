#!/usr/bin/env bash
# check_sizes.sh — no production file or folder grows past what one person
# can hold in mind (issue 10: "No production .c file is over 1000 lines, and
# none over 800 without a comment at its top saying why. No one wing (or top
# folder without wings) holds more than a third of the production code").
#
# Production code = the .c and .h files under engine/, lua/, server/, cli/.
# Fails (exit 1) when
#  - a .c file has more than 1000 lines;
#  - a .c file has more than 800 lines and no comment line among its first
#    15 lines has the word "long" or "lines" (the comment that says why);
#  - one unit holds more than a third of all production lines. Units are the
#    server wings server/<wing>, the files directly in server/ ("server"),
#    and the top folders without wings: engine, lua, cli.
# Prints every unit's share. Usage: scripts/check_sizes.sh [ROOT] (default:
# this repository). Only bash and coreutils. Exit 0 ok, 1 violations, 2 usage.
set -euo pipefail
ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
[ -d "$ROOT" ] || { echo "check_sizes: no directory $ROOT" >&2; exit 2; }
cd "$ROOT"
MAX_LINES=1000
EXPLAIN_LINES=800

unit() {
    case $1 in
        server/*/*) local rest=${1#server/}; echo "server/${rest%%/*}" ;;
        server/*) echo server ;;
        *) echo "${1%%/*}" ;;
    esac
}

fail=0
total=0
declare -A lines_of=()
while IFS= read -r f; do
    n=$(wc -l <"$f")
    total=$((total + n))
    u=$(unit "$f")
    lines_of[$u]=$(( ${lines_of[$u]:-0} + n ))
    case $f in *.c) ;; *) continue ;; esac
    if [ "$n" -gt "$MAX_LINES" ]; then
        echo "too long: $f has $n lines (at most $MAX_LINES): split it by job"
        fail=1
    elif [ "$n" -gt "$EXPLAIN_LINES" ]; then
        # a comment line (/*, *, //) near the top that says why it is long
        if ! head -n 15 "$f" | grep -E '^[[:space:]]*(/\*|\*|//)' | grep -qiwE 'long|lines'; then
            echo "long without a reason: $f has $n lines (over $EXPLAIN_LINES): say why in a comment in its first 15 lines (with the word \"long\" or \"lines\"), or split it"
            fail=1
        fi
    fi
done < <(for top in engine lua server cli; do
             [ -d "$top" ] && find "$top" -type f \( -name '*.c' -o -name '*.h' \) -not -path 'engine/examples/*'
         done | LC_ALL=C sort)

if [ "$total" -eq 0 ]; then
    echo "check_sizes: no production code under $ROOT"
    exit 1
fi
echo "share of the $total production lines (.c and .h) per unit (at most a third each):"
for u in $(printf '%s\n' "${!lines_of[@]}" | LC_ALL=C sort); do
    n=${lines_of[$u]}
    pct=$(( (n * 1000 / total + 5) / 10 ))
    mark=""
    if [ $((n * 3)) -gt "$total" ]; then
        mark="  <- more than a third"
        fail=1
    fi
    printf '  %-16s %6d lines %3d %%%s\n' "$u" "$n" "$pct" "$mark"
done

if [ "$fail" -ne 0 ]; then
    echo "check_sizes: FAILED"
    exit 1
fi
echo "check_sizes: ok"

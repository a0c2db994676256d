#!/usr/bin/env bash
# check_layers.sh — the include graph of the production code must have no
# circle and must run one way (issue 10: "No circle between folders or
# between server/ wings. A check in CI fails if one appears").
#
# Every `#include "…"` in engine/, lua/, server/ and cli/ (.c and .h; not
# engine/examples/, programs that use the library from outside) is
# resolved to the file it names, the way the compiler would for our CMake
# include directories: first the including file's own folder, then the root
# (server/… paths), engine/include and lua/include ("vigil/engine.h"), then
# cli/. Each file belongs to a unit: engine, lua, cli, server (files directly
# in server/) or server/<wing>. The script fails (exit 1) when
#  - a unit-to-unit edge runs against the fixed direction of the top folders
#    cli -> server -> lua -> engine (engine includes nothing of lua, server,
#    cli; lua nothing of server, cli; server nothing of cli);
#  - the unit graph has a cycle (found by tsort); the units of each loop and
#    the includes between them are printed with file:line;
#  - an include names no file (the tree would not build);
#  - a wing with a fixed list of the units it may use (ALLOWED below, from
#    docs/architecture.md) includes another: the cluster wing uses only
#    common, state, http (and the engine's headers), so nothing it owns
#    drags the rest of the server under the lifecycle's feet (issue 14).
# Usage: scripts/check_layers.sh [ROOT]   (default: this repository). Only
# bash and coreutils, so it runs on a fresh Debian before anything is
# installed. Exit 0: clean; 1: violations (listed on stdout); 2: usage.
set -euo pipefail
ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
[ -d "$ROOT" ] || { echo "check_layers: no directory $ROOT" >&2; exit 2; }
ROOT=$(cd "$ROOT" && pwd)
cd "$ROOT"

# unit PATH (relative to ROOT): the unit a file belongs to.
unit() {
    case $1 in
        server/*/*) local rest=${1#server/}; echo "server/${rest%%/*}" ;;
        server/*) echo server ;;
        *) echo "${1%%/*}" ;;
    esac
}
# rank UNIT: position of its top folder in cli -> server -> lua -> engine.
rank() {
    case ${1%%/*} in
        engine) echo 0 ;; lua) echo 1 ;; server) echo 2 ;; cli) echo 3 ;; *) echo 9 ;;
    esac
}
# resolve DIR NAME: the included file, relative to ROOT, or nothing.
resolve() {
    local dir=$1 name=$2 base cand
    for base in "$dir" . engine/include lua/include cli; do
        cand=$(realpath -m --relative-to=. "$base/$name")
        case $cand in ../*|/*) continue ;; esac
        if [ -f "$cand" ]; then echo "$cand"; return 0; fi
    done
    return 0
}

FILES=()
for top in engine lua server cli; do
    [ -d "$top" ] || continue
    while IFS= read -r f; do FILES+=("$f"); done < <(find "$top" -type f \( -name '*.c' -o -name '*.h' \) -not -path 'engine/examples/*' | LC_ALL=C sort)
done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
: >"$TMP/edges"       # from<TAB>to<TAB>file:line<TAB>include text
fail=0
for f in "${FILES[@]}"; do
    from=$(unit "$f")
    dir=$(dirname "$f")
    while IFS=: read -r line text; do
        name=${text#*\"}
        name=${name%%\"*}
        target=$(resolve "$dir" "$name")
        if [ -z "$target" ]; then
            # generated into the build directory at build time (cmake/commit.cmake)
            case $name in vigil_commit.h) continue ;; esac
            echo "unresolved include: $f:$line #include \"$name\" names no file"
            fail=1
            continue
        fi
        to=$(unit "$target")
        [ "$from" = "$to" ] && continue
        printf '%s\t%s\t%s:%s\t#include "%s"\n' "$from" "$to" "$f" "$line" "$name" >>"$TMP/edges"
    done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]+"' "$f" || true)
done

# 1. direction between top folders
while IFS=$'\t' read -r from to loc inc; do
    if [ "$(rank "$from")" -lt "$(rank "$to")" ]; then
        echo "wrong direction: $from -> $to  $loc $inc  (allowed: cli -> server -> lua -> engine)"
        fail=1
    fi
done <"$TMP/edges"

# 1b. wings with a fixed list of the units they may use (issue 14, h7)
declare -A ALLOWED=([server/cluster]="server/common server/state server/http engine")
while IFS=$'\t' read -r from to loc inc; do
    allowed=${ALLOWED[$from]:-}
    [ -n "$allowed" ] || continue
    case " $allowed " in *" $to "*) ;; *)
        echo "not allowed: $from -> $to  $loc $inc  ($from may use only: $allowed)"
        fail=1 ;;
    esac
done <"$TMP/edges"

# 2. cycles between units. GNU tsort reports each loop it finds on stderr
# ("tsort: FILE: input contains a loop:" then "tsort: UNIT" per member),
# breaks it and goes on, so every independent loop is listed.
cut -f1,2 "$TMP/edges" | LC_ALL=C sort -u | tr '\t' ' ' >"$TMP/pairs"
if ! tsort "$TMP/pairs" >/dev/null 2>"$TMP/tsort"; then
    fail=1
    if ! grep -q 'input contains a loop' "$TMP/tsort"; then
        echo "tsort failed:"; cat "$TMP/tsort"
    fi
    loops=()
    cur=""
    while IFS= read -r l; do
        case $l in
            *"input contains a loop"*) [ -n "$cur" ] && loops+=("$cur"); cur="" ;;
            "tsort: "*) cur="$cur ${l#tsort: }" ;;
        esac
    done <"$TMP/tsort"
    [ -n "$cur" ] && loops+=("$cur")
    for members in "${loops[@]}"; do
        echo "cycle between units:$members"
        declare -A inloop=()
        for u in $members; do inloop[$u]=1; done
        while IFS=$'\t' read -r from to loc inc; do
            if [ -n "${inloop[$from]:-}" ] && [ -n "${inloop[$to]:-}" ]; then
                echo "  $from -> $to  $loc $inc"
            fi
        done <"$TMP/edges"
        unset inloop
    done
fi

if [ "$fail" -ne 0 ]; then
    echo "check_layers: FAILED (${#FILES[@]} files; the rules are in scripts/check_layers.sh and docs/architecture.md)"
    exit 1
fi
echo "check_layers: ok (${#FILES[@]} files, $(wc -l <"$TMP/pairs") unit edges, no cycle, cli -> server -> lua -> engine)"

#!/bin/sh
# compare-upstream.sh PJREDDIE_DIR ALEXEYAB_DIR [CFG_NAME_PATTERN]
#
# darknetp against upstream darknet on every classification cfg of both trees (issue 12's
# bar). PJREDDIE_DIR and ALEXEYAB_DIR are built upstream trees (each with ./darknet and
# cfg/, data/dog.jpg); CFG_NAME_PATTERN (a shell pattern, default '*') picks cfgs by name.
# Not part of `make test`: CI has no upstream trees. See README "Compared with upstream
# darknet" for how to build them.
#
# A classification cfg is one whose last section is [softmax] or [cost]. For each:
#   1. tools/upstream_weights.py writes one seeded pseudo-random .weights file for it,
#      laid out as that tree's load_weights_upto reads it;
#   2. tools/center_crop.c cuts the centred WxH window (the cfg's own size: no network is
#      resized) out of the tree's data/dog.jpg, so neither program resizes the image;
#   3. `darknet classifier predict` of the tree and `darknetp classifier predict` run on
#      the same data file (generated names label0..labelN-1, N the network's outputs,
#      top=5), weights and image;
#   4. the top-5 lines are compared: pjreddie's byte for byte; AlexeyAB's (which prints
#      `name: fraction`) by label and order, each percentage within 0.02 (AlexeyAB folds
#      batch norm into the weights before it predicts, which moves the last digits).
# Status: match, differ, refused (darknetp refuses the cfg: its first error line),
# out-of-scope (recurrent layers, xnor/binary convolutions: README "Limits"), or
# upstream-failed (the tree's own darknet printed no top-5).
#
# Environment: DARKNETP (default bin/darknetp of this checkout), SEED (default 1), KEEP=1
# keeps the work directory (weights, images, logs) and prints its path, TREES (default
# "pj ab") the trees to run.
# Exit status: 0 when every cfg matches or is out of scope, 1 otherwise, 2 on usage errors.
set -eu

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 PJREDDIE_DIR ALEXEYAB_DIR [CFG_NAME_PATTERN]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
pj=$(cd "$1" && pwd)
ab=$(cd "$2" && pwd)
pattern=${3:-*}
darknetp=${DARKNETP:-$here/bin/darknetp}
seed=${SEED:-1}
for t in "$pj" "$ab"; do
    if [ ! -x "$t/darknet" ] || [ ! -d "$t/cfg" ] || [ ! -f "$t/data/dog.jpg" ]; then
        echo "$0: $t: needs a built ./darknet, cfg/ and data/dog.jpg" >&2
        exit 2
    fi
done
if [ ! -x "$darknetp" ]; then
    echo "$0: $darknetp not found: run make first, or set DARKNETP" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/compare-upstream.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    echo "work directory: $work" >&2
else
    trap 'rm -rf "$work"' EXIT
fi
cc -std=c11 -O2 -Wall -Wextra -Werror "$here/tools/center_crop.c" -lstb -o "$work/center_crop"

# Prints "STATUS<TAB>first differing line" for one cfg; logs go to $work/$tag.*.
compare_one() { # tree-tag tree-dir cfg-path
    tag=$1 dir=$2 cfg=$3
    name=$(basename "$cfg" .cfg)
    base="$work/$tag.$name"
    if grep -Eq '^[[:space:]]*\[(rnn|gru|lstm|crnn|conv_lstm|history)\]' "$cfg"; then
        printf 'out-of-scope\trecurrent layers (README: Limits)\n'
        return
    fi
    if grep -Eq '^[[:space:]]*(xnor|binary)[[:space:]]*=[[:space:]]*[1-9]' "$cfg"; then
        printf 'out-of-scope\txnor/binary convolution (README: Limits)\n'
        return
    fi
    # The seed depends on the tree and the cfg, so that no two files share their numbers.
    s=$(printf '%s/%s/%s' "$seed" "$tag" "$name" | cksum | cut -d' ' -f1)
    if ! python3 "$here/tools/upstream_weights.py" --tree "$tag" --seed "$s" "$cfg" \
        "$base.weights" >"$base.layout" 2>"$base.gen.err"; then
        printf 'refused\tweights generator: %s\n' "$(head -n1 "$base.gen.err")"
        return
    fi
    w=$(sed -n 's/^input \([0-9]*\) .*/\1/p' "$base.layout")
    h=$(sed -n 's/^input [0-9]* \([0-9]*\) .*/\1/p' "$base.layout")
    classes=$(sed -n 's/^outputs //p' "$base.layout")
    seq 0 $((classes - 1)) | sed 's/^/label/' >"$base.names"
    printf 'classes=%s\nnames=%s\ntop=5\n' "$classes" "$base.names" >"$base.data"
    if ! "$work/center_crop" "$dir/data/dog.jpg" "$base.png" "$w" "$h" 2>"$base.crop.err"; then
        printf 'refused\timage: %s\n' "$(head -n1 "$base.crop.err")"
        return
    fi
    # Upstream darknet opens some files relative to its tree: run it from there.
    (cd "$dir" && ./darknet classifier predict "$base.data" "$cfg" "$base.weights" \
        "$base.png" >"$base.up.out" 2>"$base.up.err") || true
    dp_rc=0
    # darknetp from there too: a cfg's own paths (darknet9000's tree=data/9k.tree) are
    # relative to the working directory in both.
    (cd "$dir" && "$darknetp" classifier predict "$base.data" "$cfg" "$base.weights" \
        "$base.png" >"$base.dp.out" 2>"$base.dp.err") || dp_rc=$?
    rm -f "$base.weights"
    # darknetp and pjreddie print ' 12.34%: label7'; AlexeyAB prints 'label7: 0.123400'.
    grep -E '^ *-?[0-9.]+%: label[0-9]+$' "$base.dp.out" >"$base.dp.top" || true
    if [ "$tag" = pj ]; then
        grep -E '^ *-?[0-9.]+%: label[0-9]+$' "$base.up.out" >"$base.up.top" || true
    else
        grep -E '^label[0-9]+: -?[0-9.]+$' "$base.up.out" >"$base.up.top" || true
    fi
    if [ ! -s "$base.up.top" ]; then
        # darknet's last words: an assertion, error() or a signal's message.
        printf 'upstream-failed\t%s\n' "$(cat "$base.up.out" "$base.up.err" |
            grep -Ei 'assert|error|fault|abort|couldn' | tail -n1 | cut -c1-160)"
        return
    fi
    if [ "$dp_rc" -ne 0 ] || [ ! -s "$base.dp.top" ]; then
        printf 'refused\t%s\n' "$(grep -v '^ *[0-9]* ' "$base.dp.err" | grep -v '^layer ' |
            head -n1)"
        return
    fi
    if [ "$tag" = pj ]; then
        if cmp -s "$base.up.top" "$base.dp.top"; then
            printf 'match\t\n'
        else
            diff "$base.up.top" "$base.dp.top" >"$base.diff" || true
            printf 'differ\tdarknet %s | darknetp %s\n' \
                "$(sed -n 's/^< //p' "$base.diff" | head -n1)" \
                "$(sed -n 's/^> //p' "$base.diff" | head -n1)"
        fi
        return
    fi
    # AlexeyAB: labels in the same order, |percent - 100 * fraction| <= 0.02.
    paste "$base.up.top" "$base.dp.top" | awk -F'\t' '
        {
            split($1, u, ": "); p = $2; sub(/^ +/, "", p); split(p, d, "%: ");
            if (u[1] != d[2] || (d[1] - 100 * u[2]) > 0.02 || (100 * u[2] - d[1]) > 0.02) {
                printf "differ\tdarknet %s | darknetp %s\n", $1, $2; bad = 1; exit
            }
            n++
        }
        END { if (!bad) { if (n == 5 || n == lines) print "match\t"; else print "differ\tline count" } }
    ' lines="$(wc -l <"$base.up.top")"
}

printf '%-5s %-28s %-15s %s\n' tree cfg status "first differing line / reason"
total=0 good=0 scope=0 other=0 skipped=0
for tag in ${TREES:-pj ab}; do
    if [ "$tag" = pj ]; then dir=$pj; else dir=$ab; fi
    for cfg in "$dir"/cfg/$pattern.cfg; do
        [ -f "$cfg" ] || continue
        last=$(grep -Eo '^[[:space:]]*\[[a-z_0-9]+\]' "$cfg" | tail -n1 | tr -d '[:space:]')
        case $last in
        "[softmax]" | "[cost]") ;;
        *)
            skipped=$((skipped + 1))
            continue
            ;;
        esac
        # The shell's own "Aborted" for an upstream assertion goes to the log, not the table.
        result=$(compare_one "$tag" "$dir" "$cfg" 2>>"$work/shell.log")
        status=$(printf '%s' "$result" | cut -f1)
        detail=$(printf '%s' "$result" | cut -f2-)
        printf '%-5s %-28s %-15s %s\n' "$tag" "$(basename "$cfg")" "$status" "$detail"
        total=$((total + 1))
        case $status in
        match) good=$((good + 1)) ;;
        out-of-scope) scope=$((scope + 1)) ;;
        *) other=$((other + 1)) ;;
        esac
    done
done
echo "$total classification cfgs: $good match, $scope out of scope, $other other" \
    "($skipped other cfgs end in another section: detection and the like, not compared)"
[ "$other" -eq 0 ]

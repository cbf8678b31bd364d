#!/bin/sh
# Every benchmark side by side, in one command, then docs/benchmarks.md from the figures:
#   bench/run.sh
# duet against jrnl 4.6 and the fsync floor (duet-bench), duet's sync (duet-sync-bench) against
# two automerge-repo 2.x peers (bench/automerge-repo), at 1,000, 10,000 and 100,000 items.
# Settings (environment): SIZES="1000 10000 100000", ROUNDS=7 (command rounds), SYNC_ROUNDS=7,
# AMR_SIZES="1000 10000" (automerge-repo's sizes: building its document one change per item
# takes minutes at 100,000), AMR_ROUNDS=3, OUT=target/bench-results.
# Needs: cargo, python3 with venv (jrnl), node and npm (automerge-repo; skipped with a note when
# missing). As root it measures IP bytes in network namespaces of its own (unshare -n).
set -eu
cd "$(dirname "$0")/.."
SIZES="${SIZES:-1000 10000 100000}"
ROUNDS="${ROUNDS:-7}"
SYNC_ROUNDS="${SYNC_ROUNDS:-7}"
AMR_SIZES="${AMR_SIZES:-1000 10000}"
AMR_ROUNDS="${AMR_ROUNDS:-3}"
OUT="${OUT:-target/bench-results}"
started=$(date +%s)

mkdir -p "$OUT"
rm -f "$OUT"/*.json
echo "== building release" >&2
cargo build --release --locked -p duet-cli -p duet-tests >&2
echo "== jrnl 4.6 (PyPI, into target/jrnl-venv)" >&2
jrnl=$(bench/setup-jrnl.sh)
amr=""
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    # `npm install`, not `npm ci`: the registry lacks cbor-x's optional native decoder, which the
    # lock therefore leaves out and `npm ci` refuses; the versions are still those of the lock.
    echo "== automerge-repo (npm install in bench/automerge-repo)" >&2
    (cd bench/automerge-repo && npm install --silent --no-audit --no-fund >&2) && amr=yes
else
    echo "== node or npm missing: automerge-repo is left out" >&2
fi

in_own_namespace() {
    if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
        unshare -n sh -c 'ip link set lo up && exec "$0" "$@"' "$@" --ip-bytes
    else
        "$@"
    fi
}

for n in $SIZES; do
    echo "== $n items: the commands" >&2
    target/release/duet-bench --items "$n" --runs "$ROUNDS" --jrnl "$jrnl" \
        --json "$OUT/cli-$n.json"
    echo "== $n items: sync" >&2
    export_flag=""
    case " $AMR_SIZES " in *" $n "*) export_flag="--export $OUT/items-$n.json" ;; esac
    # shellcheck disable=SC2086
    target/release/duet-sync-bench --items "$n" --runs "$SYNC_ROUNDS" \
        --json "$OUT/sync-$n.json" $export_flag
    if [ -n "$amr" ] && [ -n "$export_flag" ]; then
        echo "== $n items: automerge-repo" >&2
        in_own_namespace node bench/automerge-repo/sync.mjs --items-json "$OUT/items-$n.json" \
            --out "$OUT/amr-$n.json" --rounds "$AMR_ROUNDS"
        rm -f "$OUT/items-$n.json"
    fi
done

# The first sync again over a link of 200 Mbit/s (a token bucket on the loopback of the
# bench's own namespace; needs root and tc): loading overlaps the transfer there.
case " $SIZES " in *" 100000 "*)
    if [ "$(id -u)" = 0 ] && command -v tc >/dev/null 2>&1; then
        echo "== 100000 items: first sync over a 200 Mbit/s link" >&2
        target/release/duet-sync-bench --items 100000 --runs 1 --link-mbit 200 \
            --json "$OUT/link-100000.json"
    else
        echo "== no root or no tc: the first sync over a 200 Mbit/s link is left out" >&2
    fi ;;
esac

python3 bench/report.py "$OUT" "$(( $(date +%s) - started ))" > docs/benchmarks.md.new
mv docs/benchmarks.md.new docs/benchmarks.md
echo "== wrote docs/benchmarks.md ($(( $(date +%s) - started )) s in all)" >&2

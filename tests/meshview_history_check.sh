#!/usr/bin/env bash
# Local proof that our Alembic history (alembic.ini + alembic/) is equivalent to MeshView's.
#
#   tests/meshview_history_check.sh /path/to/meshview
#
# The argument is a MeshView checkout (a work tree with alembic/versions/, or a bare git
# directory, whose HEAD is read).  CI cannot fetch MeshView, so this is run by hand.
#
# Both histories run under real Python Alembic (PYTHON, default .venv/bin/python) on SQLite,
# each in its own temporary project.  MeshView's env.py imports MeshView, so its revision
# files are run with our alembic.ini and env.py; only the versions/ differ.  After every
# step the two databases are compared: `sqlite3 .schema` text (when the CLI is installed),
# sqlite_master, PRAGMA table_info / index_list / index_xinfo / foreign_key_list of every
# table, alembic_version rows and all table data.  Seed rows (nodes with several last_update
# spellings, packets, receptions, traceroutes) make the batch table copies and the
# b7c3c2e3a1f0 data loop do real work.  CREATE INDEX statements are compared sorted by
# name: Alembic's batch mode re-creates indexes in Python set order, so their order in
# sqlite_master differs from run to run even between two runs of MeshView's own files.
# A full run takes a few minutes (about 70 checks, each Alembic call is a new process).
#
# Scenarios:
#   graph    revision ids, down_revision, branch_labels, depends_on, heads
#   full     upgrade head from empty, then downgrade base
#   steps    upgrade +1 to head (seeding on the way), each step followed by a
#            downgrade -1 / upgrade +1 round trip, then downgrade -1 down to base
#   badrows  last_update values the data loop cannot convert: both must fail alike
#            and leave the same database behind
#   offline  `--sql` output of every single step, up and down
#
# The one intended difference: MeshView's c88468b7ab0b downgrade fails on SQLite once
# add_time_us_cols has been downgraded ("no such index: idx_traceroute_import_time_us");
# ours drops those indexes with IF EXISTS and completes.  That step is checked as exactly
# this difference (online: MeshView fails, ours reaches base; offline: same SQL apart from
# IF EXISTS).
#
# Exit status: 0 when everything matches, 1 on any difference, 2 on usage/setup errors.
set -euo pipefail

usage() { echo "usage: $0 MESHVIEW_CHECKOUT" >&2; exit 2; }
[ $# -eq 1 ] || usage
MESHVIEW=$1

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" -c 'import alembic, sqlalchemy' 2>/dev/null \
    || { echo "error: $PYTHON cannot import alembic and sqlalchemy" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/meshview-history.XXXXXX")
if [ -n "${KEEP_WORK:-}" ]; then
    echo "work directory kept: $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi

# ---------------------------------------------------------------- the two projects
OURS=$WORK/ours
REAL=$WORK/real
mkdir -p "$OURS/alembic/versions" "$REAL/alembic/versions"
cp "$ROOT/alembic.ini" "$OURS/"
cp "$ROOT/alembic/env.py" "$ROOT/alembic/script.py.mako" "$OURS/alembic/"
cp "$ROOT"/alembic/versions/*.py "$OURS/alembic/versions/"

cp "$ROOT/alembic.ini" "$REAL/"
cp "$ROOT/alembic/env.py" "$ROOT/alembic/script.py.mako" "$REAL/alembic/"
if [ -d "$MESHVIEW/alembic/versions" ]; then
    cp "$MESHVIEW"/alembic/versions/*.py "$REAL/alembic/versions/"
elif git --git-dir="$MESHVIEW" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    git --git-dir="$MESHVIEW" ls-tree --name-only HEAD alembic/versions/ | grep '\.py$' |
        while read -r path; do
            git --git-dir="$MESHVIEW" show "HEAD:$path" >"$REAL/$path"
        done
else
    echo "error: $MESHVIEW is neither a MeshView work tree nor a git directory" >&2
    exit 2
fi
n_real=$(find "$REAL/alembic/versions" -name '*.py' | wc -l)
[ "$n_real" -gt 0 ] || { echo "error: no revision files found in $MESHVIEW" >&2; exit 2; }

# ---------------------------------------------------------------- helper (Python)
cat >"$WORK/helper.py" <<'PY'
"""snapshot DB | seed DB STAGE | graph PROJECT | sql DB STATEMENT"""
import sqlite3
import sys


def q(conn, sql):
    return conn.execute(sql).fetchall()


def snapshot(path):
    """Everything we compare, in an order that does not depend on Alembic's whims.

    Batch mode re-creates a table's indexes by iterating a Python set of Index objects, so
    the order of CREATE INDEX rows in sqlite_master (and of PRAGMA index_list) changes from
    run to run even for MeshView's own files.  Indexes are therefore listed by name; the
    order of the tables themselves is deterministic and is compared as is.
    """
    conn = sqlite3.connect(path)
    out = []
    out.append("## tables in sqlite_master order")
    for row in q(conn, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY rowid"):
        out.append(repr(row))
    out.append("## sqlite_master by table, type, name")
    for row in q(conn, "SELECT type, name, tbl_name, sql FROM sqlite_master "
                       "ORDER BY tbl_name, type, name"):
        out.append(repr(row))
    tables = [r[0] for r in q(conn, "SELECT name FROM sqlite_master WHERE type='table' "
                                    "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    for t in tables:
        out.append("## table %s" % t)
        for row in q(conn, "PRAGMA table_info('%s')" % t):
            out.append("table_info %r" % (row,))
        # index_list: (seq, name, unique, origin, partial); seq only reflects creation order.
        index_rows = sorted(q(conn, "PRAGMA index_list('%s')" % t), key=lambda r: r[1])
        for row in index_rows:
            out.append("index_list %r" % (row[1:],))
        for row in q(conn, "PRAGMA foreign_key_list('%s')" % t):
            out.append("foreign_key_list %r" % (row,))
        for ix in index_rows:
            for pragma in ("index_info", "index_xinfo"):
                for row in q(conn, "PRAGMA %s('%s')" % (pragma, ix[1])):
                    out.append("%s %s %r" % (pragma, ix[1], row))
        cols = [r[1] for r in q(conn, "PRAGMA table_info('%s')" % t)]
        if cols:
            select = ", ".join("typeof(\"%s\"), \"%s\"" % (c, c) for c in cols)
            order = ", ".join("\"%s\"" % c for c in cols)
            for row in q(conn, "SELECT %s FROM \"%s\" ORDER BY %s" % (select, t, order)):
                out.append("row %r" % (row,))
    conn.close()
    print("\n".join(out))


def sort_schema():
    """`sqlite3 .schema` text on stdin, statements sorted (see snapshot())."""
    text = sys.stdin.read()
    statements = [s.strip() for s in text.split(";\n") if s.strip()]
    print(";\n".join(sorted(statements)))


def version(path):
    conn = sqlite3.connect(path)
    try:
        rows = q(conn, "SELECT version_num FROM alembic_version")
    except sqlite3.OperationalError:
        rows = []
    conn.close()
    print(" ".join(r[0] for r in rows))


SEEDS = {
    # At c88468b7ab0b: every table of the initial schema, import_time columns included.
    "initial": [
        "INSERT INTO node (id, node_id, long_name, short_name, hw_model, firmware, role,"
        " last_lat, last_long, channel, last_update) VALUES"
        " ('!00000001', 1, 'Alpha', 'ALPH', 'TBEAM', '2.5.0', 'CLIENT', 377749000,"
        "  -1224194000, 'LongFast', '2025-01-02 03:04:05'),"
        " ('!00000002', 2, 'Bravo', 'BRAV', 'HELTEC_V3', NULL, 'ROUTER', NULL, NULL,"
        "  'LongFast', '2025-01-02 03:04:05.123456'),"
        " ('!00000003', 3, 'Charlie', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        "INSERT INTO packet (id, portnum, from_node_id, to_node_id, payload, import_time,"
        " import_time_us, channel) VALUES"
        " (1001, 1, 1, 4294967295, x'0a0b0c', '2025-01-02 03:04:05', 1735787045000000, 'LongFast'),"
        " (1002, 70, 2, 1, x'', '2025-01-02 03:04:06.5', 1735787046500000, 'LongFast'),"
        " (1003, 3, 3, 4294967295, NULL, NULL, NULL, NULL)",
        "INSERT INTO packet_seen (packet_id, node_id, rx_time, hop_limit, hop_start, channel,"
        " rx_snr, rx_rssi, topic, import_time, import_time_us) VALUES"
        " (1001, 2, 1735787045, 3, 3, 'LongFast', 6.25, -80, 'msh/US/2/e/LongFast/!00000002',"
        "  '2025-01-02 03:04:05', 1735787045000000),"
        " (1001, 3, 1735787046, 2, 3, 'LongFast', -3.5, -110, NULL, NULL, 1735787046000000),"
        " (1002, 1, 1735787046, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        "INSERT INTO traceroute (id, packet_id, gateway_node_id, done, route, import_time,"
        " import_time_us) VALUES"
        " (1, 1002, 1, 1, x'08011002', '2025-01-02 03:04:06', 1735787046000000),"
        " (2, 1002, NULL, 0, NULL, NULL, NULL)",
    ],
    # At 9f3b1a8d2c4f, right before the data loop: more spellings of node.last_update.
    "pre_loop": [
        "INSERT INTO node (id, node_id, long_name, last_update, first_seen_us, last_seen_us)"
        " VALUES"
        " ('!00000004', 4, 'Delta', '2025-01-02T03:04:05', 1735000000000000, 1735787045000000),"
        " ('!00000005', 5, 'Echo', '2025-01-02T03:04:05Z', NULL, NULL),"
        " ('!00000006', 6, 'Foxtrot', '2025-01-02 03:04:05+02:00', NULL, NULL),"
        " ('!00000007', 7, 'Golf', '2025-01-02 05:06:07-07:30', NULL, NULL),"
        " ('!00000008', 8, 'Hotel', '2025-01-02', NULL, NULL),"
        " ('!00000009', 9, 'India', '2025-01-02 03:04:05.5', NULL, NULL),"
        " ('!0000000a', 10, 'Juliett', '1970-01-01 00:00:00', NULL, NULL),"
        " ('!0000000b', 11, 'Kilo', '2038-01-19 03:14:08.999999', NULL, NULL),"
        " ('!0000000c', 12, 'Lima', '2024-02-29 23:59:59.000001', NULL, NULL)",
    ],
}


def seed(path, stage):
    conn = sqlite3.connect(path)
    with conn:
        for sql in SEEDS[stage]:
            conn.execute(sql)
    conn.close()


def graph(project):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config(project + "/alembic.ini")
    script = ScriptDirectory.from_config(cfg)
    for rev in script.walk_revisions():
        print(rev.revision, rev.down_revision, tuple(sorted(rev.branch_labels)),
              rev.dependencies, rev.is_head, rev.is_base)
    print("heads", script.get_heads())


def sql(path, statement):
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(statement)
    conn.close()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "snapshot":
        snapshot(sys.argv[2])
    elif cmd == "seed":
        seed(sys.argv[2], sys.argv[3])
    elif cmd == "graph":
        graph(sys.argv[2])
    elif cmd == "sort_schema":
        sort_schema()
    elif cmd == "version":
        version(sys.argv[2])
    elif cmd == "sql":
        sql(sys.argv[2], sys.argv[3])
    else:
        sys.exit("unknown command " + cmd)
PY

helper() { "$PYTHON" "$WORK/helper.py" "$@"; }

# ---------------------------------------------------------------- running and comparing
FAILURES=0
CHECKS=0
LOGN=0
ALLOW_STATUS_DIFF=

db_of() { echo "$1/meshview.db"; }

snap() {
    local project=$1 out=$2
    helper snapshot "$(db_of "$project")" >"$out"
    if command -v sqlite3 >/dev/null 2>&1; then
        { echo "## sqlite3 .schema, statements sorted"
          sqlite3 "$(db_of "$project")" .schema | helper sort_schema; } >>"$out"
    fi
}

fail() {
    echo "FAIL: $*"
    FAILURES=$((FAILURES + 1))
}

# compare LABEL: the two databases must be identical.
compare() {
    local label=$1
    CHECKS=$((CHECKS + 1))
    snap "$OURS" "$WORK/ours.snap"
    snap "$REAL" "$WORK/real.snap"
    if ! diff -u "$WORK/real.snap" "$WORK/ours.snap" >"$WORK/snap.diff"; then
        fail "$label: databases differ (- MeshView, + ours)"
        head -60 "$WORK/snap.diff"
    else
        echo "ok   $label"
    fi
}

# both ARGS...: run the same Alembic command in both projects (in parallel); their exit
# statuses must agree.
both() {
    LOGN=$((LOGN + 1))
    REAL_LOG=$WORK/log.$LOGN.real
    OURS_LOG=$WORK/log.$LOGN.ours
    (cd "$REAL" && exec "$PYTHON" -m alembic -c alembic.ini "$@") >"$REAL_LOG" 2>&1 &
    local real_pid=$!
    (cd "$OURS" && exec "$PYTHON" -m alembic -c alembic.ini "$@") >"$OURS_LOG" 2>&1 &
    local ours_pid=$!
    local real_rc=0 ours_rc=0
    wait "$real_pid" || real_rc=$?
    wait "$ours_pid" || ours_rc=$?
    if [ "$real_rc" != "$ours_rc" ] && [ -z "${ALLOW_STATUS_DIFF:-}" ]; then
        fail "alembic $*: exit status MeshView=$real_rc ours=$ours_rc"
        tail -n 3 "$REAL_LOG" "$OURS_LOG"
    fi
    BOTH_RC=$ours_rc
    REAL_RC=$real_rc
}

current() { helper version "$(db_of "$1")"; }

fresh() { rm -f "$(db_of "$OURS")" "$(db_of "$REAL")"; }

# expect_initial_downgrade_divergence LABEL TARGET: downgrade both to TARGET, a range that
# ends with c88468b7ab0b -> base.  This is the known, intended divergence: MeshView's
# c88468b7ab0b downgrade fails once add_time_us_cols is downgraded; ours must reach base.
expect_initial_downgrade_divergence() {
    local label=$1 target=$2
    CHECKS=$((CHECKS + 1))
    ALLOW_STATUS_DIFF=1 both downgrade "$target"
    local ok=1
    if [ "$REAL_RC" = 0 ] || ! grep -q "no such index: idx_traceroute_import_time_us" "$REAL_LOG" \
        || [ "$(current "$REAL")" != c88468b7ab0b ]; then
        fail "$label: MeshView was expected to fail (no such index) and stay at c88468b7ab0b"
        tail -n 3 "$REAL_LOG"
        ok=0
    fi
    local tables rows
    tables=$(helper snapshot "$(db_of "$OURS")" | grep -c "^('table'" || true)
    rows=$(helper snapshot "$(db_of "$OURS")" | grep -c "^row" || true)
    if [ "$BOTH_RC" != 0 ] || [ "$tables" != 1 ] || [ "$rows" != 0 ]; then
        fail "$label: ours should reach base, leaving only an empty alembic_version"
        tail -n 3 "$OURS_LOG"
        ok=0
    fi
    [ $ok = 0 ] || echo "ok   $label (MeshView fails at c88468b7ab0b -> base as known; ours reaches base)"
}

# ---------------------------------------------------------------- graph
echo "== graph"
CHECKS=$((CHECKS + 1))
helper graph "$REAL" >"$WORK/real.graph"
helper graph "$OURS" >"$WORK/ours.graph"
if diff -u "$WORK/real.graph" "$WORK/ours.graph"; then
    echo "ok   revision graph ($(grep -vc '^heads' "$WORK/ours.graph") revisions, $(grep '^heads' "$WORK/ours.graph"))"
else
    fail "revision graph differs"
fi
HEAD=$(sed -n "s/^heads \['\(.*\)'\]$/\1/p" "$WORK/ours.graph")
[ -n "$HEAD" ] || { fail "no single head"; HEAD=none; }

# ---------------------------------------------------------------- full
echo "== full: upgrade head, downgrade base"
fresh
both upgrade head
compare "upgrade head from empty"
expect_initial_downgrade_divergence "downgrade head -> base" base
# MeshView stopped at c88468b7ab0b; everything above it must still have matched.
fresh
both upgrade head
both downgrade c88468b7ab0b
compare "downgrade head -> c88468b7ab0b"

# ---------------------------------------------------------------- steps
echo "== steps: upgrade +1 with round trips, then downgrade -1"
fresh
REVS=()
while :; do
    both upgrade +1
    [ "$BOTH_RC" = 0 ] || { fail "upgrade +1 stopped"; break; }
    rev=$(current "$OURS")
    REVS+=("$rev")
    compare "upgrade -> $rev"
    case $rev in
        c88468b7ab0b)
            helper seed "$(db_of "$OURS")" initial
            helper seed "$(db_of "$REAL")" initial
            compare "seeded at $rev" ;;
        9f3b1a8d2c4f)
            helper seed "$(db_of "$OURS")" pre_loop
            helper seed "$(db_of "$REAL")" pre_loop
            compare "seeded at $rev" ;;
    esac
    if [ "$rev" != c88468b7ab0b ]; then
        both downgrade -1
        compare "round trip $rev: downgrade -1"
        both upgrade +1
        compare "round trip $rev: upgrade +1"
    fi
    [ "$rev" = "$HEAD" ] && break
    [ ${#REVS[@]} -lt 50 ] || { fail "no head reached"; break; }
done
[ ${#REVS[@]} = 10 ] || fail "expected 10 revisions on the way up, saw ${#REVS[@]}: ${REVS[*]}"

while [ "$(current "$OURS")" != c88468b7ab0b ]; do
    from=$(current "$OURS")
    both downgrade -1
    [ "$BOTH_RC" = 0 ] || { fail "downgrade -1 from $from stopped"; break; }
    compare "downgrade $from -> $(current "$OURS")"
done
expect_initial_downgrade_divergence "downgrade c88468b7ab0b -> base" -1

# The initial revision's own round trip, while its indexes are all still there.
fresh
both upgrade c88468b7ab0b
both downgrade base
compare "round trip c88468b7ab0b: downgrade base right after creating it"

# ---------------------------------------------------------------- badrows
echo "== badrows: last_update values the data loop cannot convert"
for value in "'garbage'" "''" "1700000000" "x'00'"; do
    fresh
    both upgrade 9f3b1a8d2c4f
    for project in "$OURS" "$REAL"; do
        helper sql "$(db_of "$project")" \
            "INSERT INTO node (id, node_id, last_update) VALUES ('!00000001', 1, $value)"
    done
    both upgrade +1
    if [ "$BOTH_RC" = 0 ]; then
        echo "note last_update=$value converted without error in both"
    else
        CHECKS=$((CHECKS + 1))
        real_err=$(grep -E '^[A-Za-z_.]+(Error|Exception)' "$REAL_LOG" | tail -1)
        ours_err=$(grep -E '^[A-Za-z_.]+(Error|Exception)' "$OURS_LOG" | tail -1)
        if [ "$real_err" = "$ours_err" ]; then
            echo "ok   last_update=$value fails alike: $ours_err"
        else
            fail "last_update=$value: MeshView '$real_err' vs ours '$ours_err'"
        fi
    fi
    compare "state after upgrade with last_update=$value"
done

# ---------------------------------------------------------------- offline
echo "== offline: --sql output of every single step, both directions"
# stdout is the generated SQL; it must be identical, and so must success or failure
# (several steps cannot run offline at all: inspector guards, batch reflection, data loop).
offline() {
    local args=("$@")
    CHECKS=$((CHECKS + 1))
    local real_rc=0 ours_rc=0
    (cd "$REAL" && "$PYTHON" -m alembic -c alembic.ini "${args[@]}" --sql) \
        >"$WORK/real.sql" 2>"$WORK/real.sql.err" || real_rc=$?
    (cd "$OURS" && "$PYTHON" -m alembic -c alembic.ini "${args[@]}" --sql) \
        >"$WORK/ours.sql" 2>"$WORK/ours.sql.err" || ours_rc=$?
    local note=""
    if [ "${args[*]}" = "downgrade c88468b7ab0b:base" ]; then
        # Intended: our initial downgrade drops its indexes with IF EXISTS (see top).
        grep -q "^DROP INDEX IF EXISTS idx_traceroute_import_time_us;" "$WORK/ours.sql" \
            || fail "offline ${args[*]}: expected DROP INDEX IF EXISTS in our SQL"
        sed -i 's/^DROP INDEX IF EXISTS /DROP INDEX /' "$WORK/ours.sql"
        note=", ours with IF EXISTS as intended"
    fi
    if [ "$real_rc" != "$ours_rc" ]; then
        fail "offline ${args[*]}: exit status MeshView=$real_rc ours=$ours_rc"
        tail -n 2 "$WORK/real.sql.err" "$WORK/ours.sql.err"
    elif ! diff -u "$WORK/real.sql" "$WORK/ours.sql"; then
        fail "offline ${args[*]}: SQL differs"
    else
        local how=ok
        [ "$ours_rc" = 0 ] || how="fails in both: $(tail -n 1 "$WORK/ours.sql.err" | cut -c1-90)"
        echo "ok   offline ${args[*]} ($how$note)"
    fi
}
prev=base
for rev in "${REVS[@]}"; do
    offline upgrade "$prev:$rev"
    offline downgrade "$rev:$prev"
    prev=$rev
done

echo
echo "$CHECKS checks, $FAILURES failures"
[ "$FAILURES" = 0 ]

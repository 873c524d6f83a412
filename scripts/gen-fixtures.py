#!/usr/bin/env python3
"""Regenerates tests/fixtures/* (except _common, which is hand-written) and prints the ids.

The fixture files are committed; this script is kept so the graphs and the syntax variations
stay reviewable and can be changed consistently.  Ids are sha1-derived, stable across runs."""
import hashlib, os, shutil, sys
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
COMMON = ROOT + "/_common"

def rid(fx, name):
    return hashlib.sha1(f"meshview-fixture:{fx}:{name}".encode()).hexdigest()[:12]

def lit(v, q='"'):
    if v is None: return "None"
    if isinstance(v, str):
        if q == '"""': return f'"""{v}"""'
        if q == "'''": return f"'''{v}'''"
        return f"{q}{v}{q}"
    if isinstance(v, tuple):
        inner = ", ".join(lit(x, q) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(lit(x, q) for x in v) + "]"
    raise TypeError(v)

def write_rev(vdir, fname, rev, down, labels=None, deps=None, msg="change", *, typed=False, q='"',
              date=True, doc="short", crlf=False, bom=False, tabs=False, comment=None, extra_top="", raw_rev=None):
    lines = []
    if comment: lines.append(f"# {comment}")
    if doc == "short":
        d = [f'"""{msg}', "", f"Revision ID: {rev}", f"Revises: {', '.join(down) if isinstance(down,(tuple,list)) else (down or '')}"]
        if date: d.append("Create Date: 2024-03-0%d 12:00:00.000000" % (1 + len(rev) % 8))
        d += ["", '"""']
        lines += d
    elif doc == "long":
        lines += [f'"""{msg}', "", "This revision carries a longer explanation that spans",
                  "several lines, so that `history -v` has a multi-line longdoc.", "",
                  "    An indented paragraph.", "", f"Revision ID: {rev}", '"""']
    elif doc == "oneline":
        lines.append(f"'''{msg}'''")
    elif doc == "none":
        pass
    lines.append("from alembic import op")
    lines.append("import sqlalchemy as sa")
    if typed: lines.append("from typing import Sequence, Union")
    if extra_top: lines.append(extra_top)
    lines.append("")
    if typed:
        lines.append(f"revision: str = {raw_rev or lit(rev, q)}")
        lines.append(f"down_revision: Union[str, Sequence[str], None] = {lit(down, q)}")
        lines.append(f"branch_labels: Union[str, Sequence[str], None] = {lit(labels, q)}")
        lines.append(f"depends_on: Union[str, Sequence[str], None] = {lit(deps, q)}")
    else:
        lines.append(f"revision = {raw_rev or lit(rev, q)}")
        lines.append(f"down_revision = {lit(down, q)}")
        if labels is not None or q == "'": lines.append(f"branch_labels = {lit(labels, q)}")
        if deps is not None or q == "'": lines.append(f"depends_on = {lit(deps, q)}")
    ind = "\t" if tabs else "    "
    lines += ["", "", "def upgrade():", f"{ind}pass", "", "", "def downgrade():", f"{ind}pass", ""]
    text = ("\r\n" if crlf else "\n").join(lines)
    data = text.encode()
    if bom: data = b"\xef\xbb\xbf" + data
    with open(os.path.join(vdir, fname), "wb") as f: f.write(data)

def project(name, ini_extra="", versions_dirs=("alembic/versions",), script_loc="%(here)s/alembic", version_locations=None):
    p = os.path.join(ROOT, name)
    if os.path.exists(p): shutil.rmtree(p)
    os.makedirs(p + "/alembic")
    shutil.copy(COMMON + "/env.py", p + "/alembic/env.py")
    shutil.copy(COMMON + "/script.py.mako", p + "/alembic/script.py.mako")
    for d in versions_dirs: os.makedirs(os.path.join(p, d), exist_ok=True)
    ini = ["# meshview-rs test fixture: " + name, "[alembic]", f"script_location = {script_loc}"]
    if version_locations: ini.append(f"version_locations = {version_locations}")
    ini += [ini_extra.strip()] if ini_extra.strip() else []
    ini += ["sqlalchemy.url = sqlite:///%(here)s/test.db", ""]
    open(p + "/alembic.ini", "w").write("\n".join(ini))
    return p

ids = {}
def R(fx, n):
    v = rid(fx, n); ids.setdefault(fx, {})[n] = v; return v

# 1 linear -------------------------------------------------------------------
fx = "linear"
p = project(fx, ini_extra="path_separator = os")
v = p + "/alembic/versions"
a, b, c, d, e = (R(fx, x) for x in "abcde")
write_rev(v, f"{a}_create_nodes.py", a, None, msg="create nodes table", typed=True)
write_rev(v, f"{b}_add_packets.py", b, a, msg="add packets", q="'")
write_rev(v, f"{c}_index_packets.py", c, b, msg="index packets by time", doc="long", date=False)
write_rev(v, f"{d}_positions.py", d, c, msg="positions", q='"""', doc="oneline")
write_rev(v, f"{e}_telemetry.py", e, d, msg="telemetry", doc="none", comment="no docstring at all in this one")
open(v + "/__init__.py", "w").write("")
open(v + "/.#emacs_lock.py", "w").write('# an editor lock file: Alembic skips names starting with .#\nrevision = "deadbeef0000"\ndown_revision = None\n')
open(v + "/README.txt", "w").write("Not a revision file; Alembic ignores it.\n")
open(p + "/other.ini", "w").write("""# alternate config used by the -c / ALEMBIC_CONFIG / -n cases
[alembic]
script_location = %(here)s/alembic
path_separator = os
sqlalchemy.url = sqlite:///%(here)s/other.db

[othersection]
script_location = %(here)s/alembic
path_separator = os
sqlalchemy.url = sqlite:///%(here)s/section.db
""")

# 2 multihead: branch point + several heads + second base ---------------------
fx = "multihead"
p = project(fx)
v = p + "/alembic/versions"
base, b, c1, c2, c3, d2, base2, x2 = (R(fx, x) for x in ["base", "b", "c1", "c2", "c3", "d2", "base2", "x2"])
write_rev(v, f"{base}_base.py", base, None, msg="base", q="'")
write_rev(v, f"{b}_branchpoint.py", b, base, msg="branch point", q="'")
write_rev(v, f"{c1}_c1.py", c1, b, msg="first branch", q='"')
write_rev(v, f"{c2}_c2.py", c2, (b,), msg="second branch (tuple down_revision)", q='"', typed=True)
write_rev(v, f"{c3}_c3.py", c3, [b], msg="third branch (list down_revision)", q="'''")
write_rev(v, f"{d2}_d2.py", d2, c2, msg="after second branch", q='"')
write_rev(v, f"{base2}_second_root.py", base2, None, msg="an independent second root")
write_rev(v, f"{x2}_x2.py", x2, base2, msg="child of second root", date=False)
# a dot-file that is NOT skipped: Alembic only skips ".#*" and "__init__*"
dot = R(fx, "dot")
write_rev(v, ".dotted_head.py", dot, c1, msg="revision in a dot-file (Alembic loads it)")

# 3 merges ---------------------------------------------------------------------
fx = "merges"
p = project(fx)
v = p + "/alembic/versions"
n = {k: R(fx, k) for k in ["a", "b1", "b2", "m1", "c1", "c2", "m2", "m3", "tail", "d1", "d2", "d3", "m4"]}
write_rev(v, "a.py", n["a"], None, msg="root")
write_rev(v, "b1.py", n["b1"], n["a"], msg="left", crlf=True, comment="this file has CRLF line endings")
write_rev(v, "b2.py", n["b2"], n["a"], msg="right", bom=True)
write_rev(v, "m1.py", n["m1"], (n["b1"], n["b2"]), msg="merge left and right", typed=True)
write_rev(v, "c1.py", n["c1"], n["a"], msg="c one", q="'")
write_rev(v, "c2.py", n["c2"], n["a"], msg="c two", q="'", tabs=True)
write_rev(v, "m2.py", n["m2"], [n["c1"], n["c2"]], msg="merge c one and c two")
write_rev(v, "m3.py", n["m3"], (n["m1"], n["m2"]), msg="merge of merges", typed=True, q="'")
write_rev(v, "tail.py", n["tail"], n["m3"], msg="after merge of merges")
write_rev(v, "d1.py", n["d1"], n["tail"], msg="d1")
write_rev(v, "d2.py", n["d2"], n["tail"], msg="d2")
write_rev(v, "d3.py", n["d3"], n["tail"], msg="d3")
write_rev(v, "m4.py", n["m4"], (n["d1"], n["d2"], n["d3"]), msg="three-way merge", doc="long")

# 4 labels ---------------------------------------------------------------------
fx = "labels"
p = project(fx)
v = p + "/alembic/versions"
n = {k: R(fx, k) for k in ["a1", "a2", "a3", "b1", "b2", "c1", "c2", "c3", "m"]}
write_rev(v, "a1.py", n["a1"], None, labels="alpha", msg="alpha root")
write_rev(v, "a2.py", n["a2"], n["a1"], msg="alpha two (inherits label)")
write_rev(v, "a3.py", n["a3"], n["a2"], msg="alpha three")
write_rev(v, "b1.py", n["b1"], None, labels=("beta", "bravo"), msg="beta root with two labels", typed=True)
write_rev(v, "b2.py", n["b2"], n["b1"], msg="beta two", tabs=True)
write_rev(v, "c1.py", n["c1"], n["a2"], labels=["gamma"], msg="gamma branches off alpha two")
write_rev(v, "c2.py", n["c2"], n["c1"], msg="gamma two")
write_rev(v, "c3.py", n["c3"], n["c2"], msg="gamma three", q="'")
write_rev(v, "m.py", n["m"], (n["a3"], n["b2"]), msg="merge alpha and beta")

# 5 depends -------------------------------------------------------------------
fx = "depends"
p = project(fx)
v = p + "/alembic/versions"
n = {k: R(fx, k) for k in ["base1", "a1", "b1", "c1", "base2", "a2", "b2", "c2", "d2", "base3", "a3", "b3", "c3", "d3"]}
write_rev(v, "base1.py", n["base1"], None, labels="one", msg="base one")
write_rev(v, "a1.py", n["a1"], n["base1"], msg="a1")
write_rev(v, "b1.py", n["b1"], n["a1"], msg="b1")
write_rev(v, "c1.py", n["c1"], n["b1"], msg="c1")
write_rev(v, "base2.py", n["base2"], None, labels="two", deps="one", msg="base two depends on label one", typed=True)
write_rev(v, "a2.py", n["a2"], n["base2"], msg="a2")
write_rev(v, "b2.py", n["b2"], n["a2"], msg="b2")
write_rev(v, "c2.py", n["c2"], n["b2"], msg="c2")
write_rev(v, "d2.py", n["d2"], n["c2"], msg="d2")
write_rev(v, "base3.py", n["base3"], None, labels=["three"], msg="base three")
write_rev(v, "a3.py", n["a3"], n["base3"], msg="a3")
write_rev(v, "b3.py", n["b3"], n["a3"], msg="b3")
write_rev(v, "c3.py", n["c3"], n["b3"], deps=n["b2"], msg="c3 depends on b2 by id", q="'")
write_rev(v, "d3.py", n["d3"], n["c3"], deps=(n["a1"], "two"), msg="d3 depends on a1 and label two", typed=True)

# 6 prefixes --------------------------------------------------------------------
fx = "prefixes"
p = project(fx)
v = p + "/alembic/versions"
pre = ["ae1027a6acf0", "ae1027a6a0b1", "ae10f0000002", "abc", "abcdef", "b0d1e5a7f9c3"]
for k in pre: ids.setdefault(fx, {})[k] = k
write_rev(v, "ae1027a6acf0_one.py", "ae1027a6acf0", None, msg="one")
write_rev(v, "ae1027a6a0b1_two.py", "ae1027a6a0b1", "ae1027a6acf0", msg="two")
write_rev(v, "ae10f0000002_three.py", "ae10f0000002", "ae1027a6a0b1", msg="three")
write_rev(v, "abc_short.py", "abc", "ae10f0000002", msg="short id that prefixes another")
write_rev(v, "abcdef_longer.py", "abcdef", "abc", msg="longer id")
write_rev(v, "b0d1e5a7f9c3_side.py", "b0d1e5a7f9c3", "ae1027a6a0b1", msg="side head")

# 7 empty ----------------------------------------------------------------------
fx = "empty"
p = project(fx)
open(p + "/alembic/versions/.gitkeep", "w").write("")

# 8 recursive --------------------------------------------------------------------
fx = "recursive"
p = project(fx, ini_extra="recursive_version_locations = true")
v = p + "/alembic/versions"
n = {k: R(fx, k) for k in ["r1", "r2", "r3", "r4", "r5"]}
os.makedirs(v + "/2024"); os.makedirs(v + "/2025/q3/deep")
write_rev(v, "r1.py", n["r1"], None, msg="top level root")
write_rev(v + "/2024", "r2.py", n["r2"], n["r1"], msg="in 2024")
write_rev(v + "/2024", "r3.py", n["r3"], n["r2"], msg="also in 2024", q="'")
write_rev(v + "/2025/q3", "r4.py", n["r4"], n["r3"], msg="in 2025/q3", typed=True)
write_rev(v + "/2025/q3/deep", "r5.py", n["r5"], n["r4"], msg="deeply nested")
open(v + "/2024/notes.md", "w").write("not a revision\n")

# 9 multiloc ------------------------------------------------------------------
fx = "multiloc"
p = project(fx, ini_extra="path_separator = os", versions_dirs=("alembic/versions", "extra_versions"),
            version_locations="%(here)s/alembic/versions:%(here)s/extra_versions")
n = {k: R(fx, k) for k in ["m1", "m2", "e1", "e2"]}
write_rev(p + "/alembic/versions", "m1.py", n["m1"], None, msg="main root", labels="main")
write_rev(p + "/alembic/versions", "m2.py", n["m2"], n["m1"], msg="main two")
write_rev(p + "/extra_versions", "e1.py", n["e1"], None, labels="extra", msg="extra root")
write_rev(p + "/extra_versions", "e2.py", n["e2"], n["e1"], deps=n["m2"], msg="extra two depends on main two")

# 10 errors --------------------------------------------------------------------
def errproj(fx, revs):
    p = project(fx)
    v = p + "/alembic/versions"
    for r in revs:
        write_rev(v, *r[:3], **(r[3] if len(r) > 3 else {}))
    for r in revs:
        ids.setdefault(fx, {})[r[1]] = r[1]

errproj("err_cycle", [("c1.py", "c0c0c0000001", "c0c0c0000003"), ("c2.py", "c0c0c0000002", "c0c0c0000001"),
                      ("c3.py", "c0c0c0000003", "c0c0c0000002"), ("c4.py", "c0c0c0000004", None)])
errproj("err_selfloop", [("s1.py", "5e1f00000001", None), ("s2.py", "5e1f00000002", "5e1f00000002")])
errproj("err_depcycle", [("d1.py", "dc0000000001", None, {"deps": "dc0000000003"}),
                         ("d2.py", "dc0000000002", "dc0000000001"), ("d3.py", "dc0000000003", "dc0000000002")])
errproj("err_missing_parent", [("p1.py", "4a0000000001", None), ("p2.py", "4a0000000002", "4a0000000001"),
                               ("p3.py", "4a0000000003", "ffffffffffff")])
errproj("err_duplicate_id", [("u1.py", "d0000000aaaa", None), ("u2.py", "d0000000bbbb", "d0000000aaaa"),
                             ("u2_again.py", "d0000000bbbb", "d0000000aaaa", {"msg": "same id again"})])
errproj("err_duplicate_label", [("l1.py", "1a0000000001", None, {"labels": "dup"}),
                                ("l2.py", "1a0000000002", None, {"labels": "dup"})])
errproj("err_syntax", [("ok.py", "5a0000000001", None)])
open(ROOT + "/err_syntax/alembic/versions/broken.py", "w").write(
    '"""broken file"""\nrevision = "5a0000000002"\ndown_revision = "5a0000000001"\n\ndef upgrade(:\n    pass\n')
errproj("err_nonliteral", [("n1.py", "0e0000000001", None)])
write_rev(ROOT + "/err_nonliteral/alembic/versions", "n2.py", "0e0000000002", "0e0000000001",
          extra_top='PREFIX = "0e00000000"', raw_rev='PREFIX + "02"', msg="revision id built from an expression")

import json

for fx, m in ids.items():
    print(fx, " ".join(f"{k}={v}" for k, v in m.items()))

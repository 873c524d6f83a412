"""The oracle for tests/ddl_vs_alembic.rs: run migration-op snippets with the real Alembic.

Usage: .venv/bin/python scripts/ddl-oracle.py CASES.txt > out.json

CASES.txt holds cases separated by lines `### name`; inside a case, optional sections
`-- seed` (raw SQL statements, `;`-terminated, run before the ops), `-- naming_convention`
(a JSON object, given to Alembic as target_metadata's naming convention) and `-- ops` (the
body of an upgrade(): Python using `op`, `sa`, `sqlite`, `postgresql`).

For every case it prints (as one JSON list):
  * "ops": the same snippet run against look-alike `op`/`sa` objects that record each call as
    our `ops::Op` value (serde JSON), the way our evaluator is meant to;
  * "online": the statements Alembic sent to SQLite (text + parameters) and the exception that
    stopped the snippet, if any, with the database afterwards (sqlite_master rows, table data);
  * "offline": the `--sql` text (as_sql=True) or its exception.
"""
import contextlib
import io
import json
import re
import sqlite3  # noqa: F401  (the DBAPI SQLAlchemy uses; imported so failures are early)
import sys
import warnings

import sqlalchemy as real_sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as real_pg
from sqlalchemy.dialects import sqlite as real_sqlite
from sqlalchemy.types import TypeEngine

from alembic.migration import MigrationContext
from alembic.operations import Operations


# ---------------------------------------------------------------------------------------------
# cases


def parse_cases(text):
    cases = []
    cur = None
    section = None
    for line in text.splitlines(keepends=True):
        if line.startswith("### "):
            cur = {"name": line[4:].strip(), "seed": "", "naming_convention": "", "ops": ""}
            cases.append(cur)
            section = "ops"
            continue
        m = re.match(r"^-- (seed|ops|naming_convention)\s*$", line)
        if m and cur is not None:
            section = m.group(1)
            continue
        if cur is not None:
            cur[section] += line
    for c in cases:
        c["naming_convention"] = (
            json.loads(c["naming_convention"]) if c["naming_convention"].strip() else {}
        )
    return cases


def seed_statements(seed):
    return [s.strip() for s in seed.split(";\n") if s.strip()]


# ---------------------------------------------------------------------------------------------
# real Alembic

REFLECTION = re.compile(r"^\s*(PRAGMA |SELECT sql FROM|SELECT name FROM)", re.S)


def exc_info(e):
    msg = str(e)
    return {"class": type(e).__name__, "message": msg}


def namespace(op):
    return {"op": op, "sa": real_sa, "sqlite": real_sqlite, "postgresql": real_pg}


def dump_db(conn):
    master = [
        list(r)
        for r in conn.exec_driver_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        )
    ]
    data = {}
    for typ, name, _tbl, _sql in master:
        if typ == "table":
            rows = conn.exec_driver_sql('SELECT * FROM "%s"' % name.replace('"', '""'))
            data[name] = sorted(json.dumps([jsonable(v) for v in r]) for r in rows)
    return {"master": master, "data": data}


def jsonable(v):
    if isinstance(v, bytes):
        return {"bytes": list(v)}
    return v


def run_online(case):
    engine = real_sa.create_engine("sqlite://")
    statements = []
    capturing = [False]

    @event.listens_for(engine, "before_cursor_execute")
    def capture(conn, cursor, statement, parameters, context, executemany):
        if not capturing[0] or REFLECTION.match(statement):
            return
        if executemany:
            params = [list(map(jsonable, p)) for p in parameters]
        else:
            params = [list(map(jsonable, parameters))] if parameters else []
        statements.append({"sql": statement, "params": params})

    error = None
    with engine.connect() as conn:
        for s in seed_statements(case["seed"]):
            conn.exec_driver_sql(s)
        conn.commit()
        capturing[0] = True
        opts = {}
        if case["naming_convention"]:
            opts["target_metadata"] = real_sa.MetaData(
                naming_convention=case["naming_convention"]
            )
        ctx = MigrationContext.configure(conn, opts=opts)
        op = Operations(ctx)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(case["ops"], namespace(op))
        except Exception as e:  # the case may be about the error
            error = exc_info(e)
        capturing[0] = False
        conn.commit()
        db = dump_db(conn)
    return {"statements": statements, "error": error, **db}


def run_offline(case):
    buf = io.StringIO()
    opts = {"as_sql": True, "output_buffer": buf}
    if case["naming_convention"]:
        opts["target_metadata"] = real_sa.MetaData(naming_convention=case["naming_convention"])
    ctx = MigrationContext.configure(dialect_name="sqlite", opts=opts)
    op = Operations(ctx)
    error = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(case["ops"], namespace(op))
    except Exception as e:
        error = exc_info(e)
    return {"text": buf.getvalue(), "error": error}


# ---------------------------------------------------------------------------------------------
# look-alikes that record calls as our ops::Op JSON (serde's externally tagged layout)


class FType:
    """A type class (`sa.String`) or instance (`sa.String(50)`)."""

    def __init__(self, dialect, name, args=None, kwargs=None):
        self.dialect, self.name = dialect, name
        self.args, self.kwargs = args or [], kwargs or {}

    def __call__(self, *args, **kwargs):
        return FType(self.dialect, self.name, list(args), kwargs)

    def to_json(self):
        return {
            "dialect": self.dialect,
            "name": self.name,
            "args": [lit(a) for a in self.args],
            "kwargs": [[k, lit(v)] for k, v in self.kwargs.items()],
        }


class FName:
    def __init__(self, s):
        self.s = s


def name_json(n):
    if n is None:
        return None
    if isinstance(n, FName):
        return {"Final": n.s}
    return {"Plain": n}


def lit(v):
    if v is None:
        return "None"
    if isinstance(v, bool):
        return {"Bool": v}
    if isinstance(v, int):
        return {"Int": v}
    if isinstance(v, float):
        return {"Float": v}
    if isinstance(v, str):
        return {"Str": v}
    if isinstance(v, bytes):
        return {"Bytes": list(v)}
    if isinstance(v, (list, tuple)):
        return {"List": [lit(x) for x in v]}
    if isinstance(v, FType):
        return {"Type": v.to_json()}
    raise TypeError("no literal for %r" % (v,))


class FExpr:
    def __init__(self, j):
        self.j = j

    def _bin(self, op, other):
        return FExpr({"Binary": {"left": self.j, "op": op, "right": expr(other)}})

    def __gt__(self, o):
        return self._bin(">", o)

    def __lt__(self, o):
        return self._bin("<", o)

    def __ge__(self, o):
        return self._bin(">=", o)

    def __le__(self, o):
        return self._bin("<=", o)

    def __eq__(self, o):
        if o is None:
            return self._bin("IS", None)
        return self._bin("=", o)

    def __ne__(self, o):
        if o is None:
            return self._bin("IS NOT", None)
        return self._bin("!=", o)

    def __add__(self, o):
        return self._bin("+", o)

    __hash__ = object.__hash__


def expr(v):
    if isinstance(v, FExpr):
        return v.j
    if isinstance(v, str):
        return {"Text": v}
    if v is None:
        return "Null"
    return {"Literal": lit(v)}


class FFunc:
    def __getattr__(self, name):
        # a Python value given to a SQL function is a bound literal, not SQL text
        return lambda *args: FExpr(
            {"Func": {"name": name, "args": [a.j if isinstance(a, FExpr) else {"Literal": lit(a)} for a in args]}}
        )


class FColumn:
    def __init__(self, name, *args, **kw):
        self.name = name
        self.type = None
        rest = list(args)
        if rest and isinstance(rest[0], FType):
            self.type = rest.pop(0)
        self.fks = [a for a in rest if isinstance(a, FForeignKey)]
        self.constraints = [a for a in rest if isinstance(a, FConstraint)]
        self.computed = next((a for a in rest if isinstance(a, FComputed)), None)
        # Identity renders nothing on SQLite; it makes the column NOT NULL by default.
        if any(isinstance(a, FIdentity) for a in rest) and "nullable" not in kw:
            kw = dict(kw, nullable=False)
        self.kw = kw

    def to_json(self):
        kw = dict(self.kw)
        ai = kw.pop("autoincrement", "auto")
        sd = kw.pop("server_default", None)
        # Python-side default: never in DDL; a batch copy fills it in (a callable's answer).
        pd = kw.pop("default", None)
        if pd is not None:
            pd = {"Sql": expr(pd)} if isinstance(pd, FExpr) else {"Bound": lit(pd() if callable(pd) else pd)}
        out = {
            "name": self.name,
            "type_": self.type.to_json() if self.type is not None else None,
            "nullable": kw.pop("nullable", None),
            "primary_key": kw.pop("primary_key", False),
            "autoincrement": {True: "True", False: "False", "auto": "Auto", "ignore_fk": "IgnoreFk"}[
                ai
            ],
            "unique": kw.pop("unique", None),
            "index": kw.pop("index", None),
            "server_default": None
            if sd is None
            else ({"Str": sd} if isinstance(sd, str) else {"Expr": expr(sd)}),
            "comment": kw.pop("comment", None),
            "foreign_keys": [f.to_json() for f in self.fks],
            "constraints": [c.to_json() for c in self.constraints],
            "kwargs": [[k, lit(v)] for k, v in kw.items()],
            "computed": None
            if self.computed is None
            else {"sqltext": expr(self.computed.sqltext), "persisted": self.computed.persisted},
            "python_default": pd,
        }
        return out


class FIdentity:
    def __init__(self, *args, **kw):
        pass


class FComputed:
    def __init__(self, sqltext, persisted=None):
        self.sqltext, self.persisted = sqltext, persisted


class FForeignKey:
    def __init__(self, target, **kw):
        self.target, self.kw = target, kw

    def to_json(self):
        kw = self.kw
        return {
            "target": self.target,
            "name": name_json(kw.get("name")),
            "ondelete": kw.get("ondelete"),
            "onupdate": kw.get("onupdate"),
            "deferrable": kw.get("deferrable"),
            "initially": kw.get("initially"),
            "match_": kw.get("match"),
            "use_alter": kw.get("use_alter", False),
        }


class FConstraint:
    def __init__(self, kind, args, kw):
        self.kind, self.args, self.kw = kind, args, kw

    def to_json(self):
        kw = dict(self.kw)
        name = name_json(kw.pop("name", None))
        if self.kind == "Check":
            return {"Check": {"name": name, "sqltext": expr(self.args[0])}}
        if self.kind == "ForeignKey":
            cols, refs = self.args
            return {
                "ForeignKey": {
                    "name": name,
                    "columns": list(cols),
                    "refcolumns": list(refs),
                    "ondelete": kw.get("ondelete"),
                    "onupdate": kw.get("onupdate"),
                    "deferrable": kw.get("deferrable"),
                    "initially": kw.get("initially"),
                    "match_": kw.get("match"),
                    "use_alter": kw.get("use_alter", False),
                }
            }
        return {
            self.kind: {
                "name": name,
                "columns": list(self.args),
                "kwargs": [[k, lit(v)] for k, v in kw.items()],
            }
        }


class FTable:
    def __init__(self, name, meta, *items, **kw):
        self.name, self.items, self.kw = name, items, kw
        self.naming_convention = getattr(meta, "naming_convention", {})

    def definition_json(self):
        return {
            "create": create_table_json(self.name, self.items, self.kw),
            "indexes": [i.to_json(self.name) for i in self.items if isinstance(i, FIndex)],
            "naming_convention": list(self.naming_convention.items()),
        }


class FMetaData:
    def __init__(self, naming_convention=None):
        self.naming_convention = naming_convention or {}


class FIndex:
    def __init__(self, name, *cols, unique=False, **kw):
        self.name, self.cols, self.unique, self.kw = name, cols, unique, kw

    def to_json(self, table):
        kw = dict(self.kw)
        where = kw.pop("sqlite_where", None)
        return {
            "name": name_json(self.name),
            "table": table,
            "schema": None,
            "keys": index_keys(self.cols),
            "unique": bool(self.unique),
            "if_not_exists": False,
            "sqlite_where": None if where is None else expr(where),
            "kwargs": [[k, lit(v)] for k, v in kw.items()],
        }


def create_table_json(name, items, kw):
    kw = dict(kw)
    return {
        "name": name,
        "schema": kw.pop("schema", None),
        "columns": [c.to_json() for c in items if isinstance(c, FColumn)],
        "constraints": [c.to_json() for c in items if isinstance(c, FConstraint)],
        "if_not_exists": bool(kw.pop("if_not_exists", False)),
        "comment": kw.pop("comment", None),
        "prefixes": kw.pop("prefixes", []),
        "kwargs": [[k, lit(v)] for k, v in kw.items()],
    }


class FTableClause:
    def __init__(self, name, *cols, schema=None):
        self.name, self.cols, self.schema = name, cols, schema


class FSa:
    def __getattr__(self, name):
        if name in ("PrimaryKeyConstraint", "UniqueConstraint", "CheckConstraint"):
            kind = name[: -len("Constraint")]
            return lambda *a, **k: FConstraint(kind, a, k)
        if name == "ForeignKeyConstraint":
            return lambda cols, refs, **k: FConstraint("ForeignKey", (cols, refs), k)
        simple = {
            "Column": FColumn,
            "Computed": FComputed,
            "Identity": FIdentity,
            "ForeignKey": FForeignKey,
            "Table": FTable,
            "MetaData": FMetaData,
            "Index": FIndex,
            "text": lambda s: FExpr({"Text": s}),
            "column": lambda n, t=None: FColumnClause(n, t),
            "literal_column": lambda s: FExpr({"Text": s}),
            "table": FTableClause,
            "func": FFunc(),
            "null": lambda: FExpr("Null"),
            "true": lambda: FExpr("True"),
            "false": lambda: FExpr("False"),
        }
        if name in simple:
            return simple[name]
        real = getattr(real_sa, name)
        if isinstance(real, type) and issubclass(real, TypeEngine):
            return FType(None, name)
        raise AttributeError(name)


class FColumnClause(FExpr):
    def __init__(self, name, type_):
        super().__init__({"Column": name})
        self.name, self.type = name, type_


class FDialect:
    def __init__(self, dialect, real):
        self.dialect, self.real = dialect, real

    def __getattr__(self, name):
        getattr(self.real, name)
        return FType(self.dialect, name)


def index_keys(cols):
    return [{"Column": c} if isinstance(c, str) else {"Expr": expr(c)} for c in cols]


class FOp:
    """`op` (table given) or `batch_op` (table fixed)."""

    def __init__(self, sink, table=None):
        self.sink, self.table = sink, table

    def _t(self, args):
        if self.table is not None:
            return self.table, list(args)
        return args[0], list(args[1:])

    def f(self, name):
        return FName(name)

    def create_table(self, name, *items, **kw):
        self.sink.append({"CreateTable": create_table_json(name, items, kw)})

    def drop_table(self, name, schema=None, if_exists=None):
        self.sink.append({"DropTable": {"name": name, "schema": schema, "if_exists": bool(if_exists)}})

    def rename_table(self, old, new, schema=None):
        self.sink.append({"RenameTable": {"old": old, "new": new, "schema": schema}})

    def add_column(self, *args, schema=None, if_not_exists=None, insert_before=None, insert_after=None):
        table, (col,) = self._t(args)
        self.sink.append(
            {
                "AddColumn": {
                    "table": table,
                    "schema": schema,
                    "column": col.to_json(),
                    "if_not_exists": bool(if_not_exists),
                    "insert_before": insert_before,
                    "insert_after": insert_after,
                }
            }
        )

    def drop_column(self, *args, schema=None, if_exists=None, existing_type=None):
        table, (col,) = self._t(args)
        op = {"table": table, "schema": schema, "column": col, "if_exists": bool(if_exists)}
        if existing_type is not None:
            op["existing_type"] = existing_type.to_json()
        self.sink.append({"DropColumn": op})

    def alter_column(self, *args, **kw):
        table, (col,) = self._t(args)
        out = {"table": table, "schema": kw.pop("schema", None), "column": col}
        for k in ("nullable", "new_column_name", "existing_nullable", "autoincrement", "existing_comment"):
            if k in kw:
                out[k] = kw.pop(k)
        for k in ("type_", "existing_type"):
            if k in kw:
                out[k] = kw.pop(k).to_json()
        if "comment" in kw:
            c = kw.pop("comment")
            if c is not False:
                out["comment"] = c
        for k in ("server_default", "existing_server_default"):
            if k in kw:
                v = kw.pop(k)
                if v is False:
                    continue
                out[k] = None if v is None else ({"Str": v} if isinstance(v, str) else {"Expr": expr(v)})
        out["kwargs"] = [[k, lit(v)] for k, v in kw.items()]
        self.sink.append({"AlterColumn": out})

    def create_index(self, name, *args, unique=False, if_not_exists=None, schema=None, **kw):
        table, (cols,) = self._t(args)
        where = kw.pop("sqlite_where", None)
        self.sink.append(
            {
                "CreateIndex": {
                    "name": name_json(name),
                    "table": table,
                    "schema": schema,
                    "keys": index_keys(cols),
                    "unique": bool(unique),
                    "if_not_exists": bool(if_not_exists),
                    "sqlite_where": None if where is None else expr(where),
                    "kwargs": [[k, lit(v)] for k, v in kw.items()],
                }
            }
        )

    def drop_index(self, name, table_name=None, schema=None, if_exists=None):
        self.sink.append(
            {
                "DropIndex": {
                    "name": name_json(name),
                    "table": self.table if self.table is not None else table_name,
                    "schema": schema,
                    "if_exists": bool(if_exists),
                }
            }
        )

    def create_unique_constraint(self, name, *args, schema=None):
        table, (cols,) = self._t(args)
        self.sink.append(
            {"CreateUniqueConstraint": {"name": name_json(name), "table": table, "schema": schema, "columns": cols}}
        )

    def create_primary_key(self, name, *args, schema=None):
        table, (cols,) = self._t(args)
        self.sink.append(
            {"CreatePrimaryKey": {"name": name_json(name), "table": table, "schema": schema, "columns": cols}}
        )

    def create_check_constraint(self, name, *args, schema=None):
        table, (cond,) = self._t(args)
        self.sink.append(
            {"CreateCheckConstraint": {"name": name_json(name), "table": table, "schema": schema, "condition": expr(cond)}}
        )

    def create_foreign_key(self, name, *args, **kw):
        source, (referent, local, remote) = self._t(args)
        self.sink.append(
            {
                "CreateForeignKey": {
                    "name": name_json(name),
                    "source_table": source,
                    "referent_table": referent,
                    "local_cols": local,
                    "remote_cols": remote,
                    "ondelete": kw.get("ondelete"),
                    "onupdate": kw.get("onupdate"),
                    "deferrable": kw.get("deferrable"),
                    "initially": kw.get("initially"),
                    "match_": kw.get("match"),
                    "source_schema": kw.get("source_schema"),
                    "referent_schema": kw.get("referent_schema"),
                }
            }
        )

    def drop_constraint(self, name, *args, type_=None, schema=None):
        table, _ = self._t(args)
        self.sink.append(
            {"DropConstraint": {"name": name_json(name), "table": table, "schema": schema, "type_": type_}}
        )

    def execute(self, sql):
        text = sql.j["Text"] if isinstance(sql, FExpr) else sql
        self.sink.append({"Execute": {"Text": {"sql": text, "params": []}}})

    def bulk_insert(self, table, rows, multiinsert=True):
        self.sink.append(
            {
                "BulkInsert": {
                    "table": {
                        "name": table.name,
                        "schema": table.schema,
                        "columns": [[c.name, c.type.to_json() if c.type else None] for c in table.cols],
                    },
                    "rows": [[[k, lit(v)] for k, v in r.items()] for r in rows],
                    "multiinsert": multiinsert,
                }
            }
        )

    @contextlib.contextmanager
    def batch_alter_table(
        self,
        table,
        schema=None,
        recreate="auto",
        partial_reordering=None,
        copy_from=None,
        table_args=(),
        table_kwargs={},
        reflect_args=(),
        reflect_kwargs={},
        naming_convention=None,
    ):
        inner = []
        yield FOp(inner, table)
        pos = {"path": "", "line": 0, "col": 0}
        self.sink.append(
            {
                "Batch": {
                    "table": table,
                    "schema": schema,
                    "recreate": recreate.capitalize(),
                    "partial_reordering": [list(x) for x in (partial_reordering or [])],
                    "copy_from": None if copy_from is None else copy_from.definition_json(),
                    "table_args": [c.to_json() for c in table_args],
                    "table_kwargs": [[k, lit(v)] for k, v in table_kwargs.items()],
                    "reflect_args": [c.to_json() for c in reflect_args],
                    "naming_convention": list((naming_convention or {}).items()),
                    "ops": [[o, pos] for o in inner],
                }
            }
        )


def record(case):
    sink = []
    ns = {
        "op": FOp(sink),
        "sa": FSa(),
        "sqlite": FDialect("sqlite", real_sqlite),
        "postgresql": FDialect("postgresql", real_pg),
    }
    exec(case["ops"], ns)
    return sink


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = parse_cases(f.read())
    out = []
    for case in cases:
        out.append(
            {
                "name": case["name"],
                "seed": seed_statements(case["seed"]),
                "naming_convention": list(case["naming_convention"].items()),
                "ops": record(case),
                "online": run_online(case),
                "offline": run_offline(case),
            }
        )
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()

//! The interpreter plugged into the runtime: [`EvalRunner`] runs each revision's `upgrade()` /
//! `downgrade()` with a [`Host`] over the [`MigrationContext`], so every operation is rendered
//! by `ddl` and executed (or printed offline) inside the context's transaction.

use std::cell::RefCell;
use std::ffi::OsString;
use std::rc::Rc;

use crate::alembic_compat::batch;
use crate::alembic_compat::ddl::{self, DdlError, RenderOptions};
use crate::alembic_compat::eval::check::check_module;
use crate::alembic_compat::eval::sql::{self, Statement};
use crate::alembic_compat::eval::{
    execute_in_line, run_revision_function, Cell, DetachedFailure, EvalError, Host, HostError,
    QueryOutput, QueryShape,
};
use crate::alembic_compat::ops::{self, Literal, Op, SourcePos};
use crate::alembic_compat::runtime::log::Level;
use crate::alembic_compat::runtime::pipeline::{Failure, Issued, Param, QueuedError};
use crate::alembic_compat::runtime::{dbapi_message, split_sqlite_error, sqlalchemy_class};
use crate::alembic_compat::runtime::{BodyError, BodyRunner, MigrationContext, PlannedStep};
use crate::alembic_compat::script::ast::Module;
use crate::alembic_compat::script::body_pack::BodyPacks;
use crate::alembic_compat::script::directory::LoadError;
use crate::alembic_compat::script::sql_override::{load_override, OverrideFinder};
use crate::alembic_compat::script::Script;

/// Runs bodies with the interpreter. Each file is parsed once per command: preflight's parse
/// is kept for the run.
#[derive(Debug, Default)]
pub struct EvalRunner {
    /// With true for a tree read from a pack. Keyed by the path's text: hashing a `Path`
    /// walks its components, which cost more than a short revision's whole lookup.
    parsed: RefCell<rustc_hash::FxHashMap<OsString, (Rc<Parsed>, bool)>>,
    /// Sources and trees of earlier runs, one read per versions directory.
    packs: RefCell<BodyPacks>,
    overrides: OverrideFinder,
}

type Parsed = (String, Module);

/// What [`check_module`] found in each file, by path.
type Checks = rustc_hash::FxHashMap<OsString, Vec<EvalError>>;

impl EvalRunner {
    /// Parses the files on all cores (a long plan spends most of its CPU time parsing) and
    /// checks each for constructs outside the model there too; the checks' findings are
    /// returned by path. Files that fail to parse are left for [`parse`](Self::parse) to
    /// report. A short plan stays on this thread: a file whose syntax tree is cached takes
    /// about 20 microseconds, and starting the threads (and asking the cgroup how many cores
    /// there are) cost MeshView's 10-revision upgrade 0.6 ms of its 9.7.
    fn parse_all(&self, scripts: &[&Script]) -> Checks {
        let mut checks = Checks::default();
        if scripts.len() < 64 {
            return checks;
        }
        let threads = crate::alembic_compat::cores();
        if threads < 2 {
            return checks;
        }
        let chunk = scripts.len().div_ceil(threads);
        let parsed: Vec<(&Script, Parsed, bool, Vec<EvalError>)> = {
            let packs = &*self.packs.borrow();
            std::thread::scope(|sc| {
                let handles: Vec<_> = scripts
                    .chunks(chunk)
                    .map(|part| {
                        sc.spawn(move || {
                            part.iter()
                                .filter_map(|s| {
                                    let (p, hit) = load(s, packs).ok()?;
                                    let found = check_module(&s.path, &p.0, &p.1);
                                    Some((*s, p, hit, found))
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        };
        let mut cache = self.parsed.borrow_mut();
        for (script, p, hit, found) in parsed {
            let key = script.path.as_os_str().to_owned();
            checks.insert(key.clone(), found);
            cache.insert(key, (Rc::new(p), hit));
        }
        checks
    }

    /// The script's source and tree (true: read from a pack), parsed at most once per
    /// command. `to_run`: the body runs now, and a tree from a pack is then not kept for
    /// the rest of the command: it decodes again in microseconds if the body runs twice (a
    /// rehearsal), and once the run drops it, its memory serves the next body's tree
    /// instead of fresh pages.
    fn parse(&self, script: &Script, to_run: bool) -> Result<(Rc<Parsed>, bool), BodyError> {
        let key = script.path.as_os_str();
        let cached = self.parsed.borrow().get(key).cloned();
        if let Some(parsed) = cached {
            if to_run && parsed.1 {
                self.parsed.borrow_mut().remove(key);
            }
            return Ok(parsed);
        }
        let (parsed, hit) = load(script, &self.packs.borrow()).map_err(syntax_error)?;
        let parsed = (Rc::new(parsed), hit);
        if !(to_run && hit) {
            self.parsed
                .borrow_mut()
                .insert(key.to_owned(), parsed.clone());
        }
        Ok(parsed)
    }

    /// Preflight of one body outside the packs' verdicts: parsed (or its syntax error) and
    /// checked, with the findings of [`parse_all`](Self::parse_all) when it had the file.
    fn check(&self, script: &Script, checks: &mut Checks, errors: &mut Vec<BodyError>) {
        match self.parse(script, false) {
            Ok((parsed, hit)) => {
                let found = checks
                    .remove(script.path.as_os_str())
                    .unwrap_or_else(|| check_module(&script.path, &parsed.0, &parsed.1));
                if !hit {
                    self.packs
                        .borrow_mut()
                        .add(script, &parsed.0, &parsed.1, found.is_empty());
                }
                errors.extend(found.iter().map(refusal));
            }
            Err(e) => errors.push(e),
        }
    }
}

/// A script's source and tree from the packs, else read and parsed (true: from a pack).
fn load(script: &Script, packs: &BodyPacks) -> Result<(Parsed, bool), LoadError> {
    match packs.get(script) {
        Some(p) => Ok((p, true)),
        None => script.parse().map(|p| (p, false)),
    }
}

/// A construct the static check refuses, as a body error.
fn refusal(e: &EvalError) -> BodyError {
    BodyError {
        message: e.to_string(),
        python_class: e.python_class().to_string(),
    }
}

/// A revision file or override file that cannot be read, as Python reports it.
fn syntax_error(e: impl std::fmt::Display) -> BodyError {
    BodyError {
        message: e.to_string(),
        python_class: "SyntaxError".into(),
    }
}

/// An override file without the section for the function (`upgrade`/`downgrade`) it
/// must replace.
fn missing_section(path: &std::path::Path, script: &Script, name: &str) -> BodyError {
    BodyError {
        message: format!(
            "{}: no '-- {name}' section, and the file replaces {}'s Python {name}()",
            path.display(),
            script.revision
        ),
        python_class: "NotImplementedError".into(),
    }
}

fn function_name(upgrade: bool) -> &'static str {
    if upgrade {
        "upgrade"
    } else {
        "downgrade"
    }
}

impl BodyRunner for EvalRunner {
    fn preflight(
        &self,
        steps: &[PlannedStep<'_>],
        ctx: &MigrationContext,
    ) -> Result<(), Vec<BodyError>> {
        let mut errors = Vec::new();
        let mut seen = rustc_hash::FxHashSet::default();
        let scripts: Vec<&Script> = steps
            .iter()
            .filter(|s| seen.insert(s.script.path.as_os_str()))
            .map(|s| s.script)
            .collect();
        self.packs.borrow_mut().open_for(scripts.iter().copied());
        // Each script with its override file, and whether it needs checking here. A body a
        // pack holds with the checker's verdict that it is clean is neither decoded nor
        // checked here: the run decodes it when it gets there, while the statements before
        // it execute. Decoding and checking 200 stored trees was 1.4-2.2 ms of a
        // 200-revision upgrade's start, with the database idle.
        let scripts: Vec<(&Script, Option<std::path::PathBuf>, bool)> = {
            let packs = self.packs.borrow();
            scripts
                .into_iter()
                .map(|s| {
                    let found = self
                        .overrides
                        .find(&s.path, &s.revision, ctx.dialect_name());
                    let needs_check = found.is_none() && !packs.passed_check(s);
                    (s, found, needs_check)
                })
                .collect()
        };
        let to_check: Vec<&Script> = scripts
            .iter()
            .filter(|(_, _, needs_check)| *needs_check)
            .map(|(s, ..)| *s)
            .collect();
        let mut checks = self.parse_all(&to_check);
        for (script, path, needs_check) in &scripts {
            let Some(path) = path else {
                if *needs_check {
                    self.check(script, &mut checks, &mut errors);
                }
                continue;
            };
            let upgrade = steps
                .iter()
                .any(|s| s.script.path == script.path && s.upgrade);
            let downgrade = steps
                .iter()
                .any(|s| s.script.path == script.path && !s.upgrade);
            match load_override(path) {
                Ok(o) => {
                    for (needed, section, name) in [
                        (upgrade, &o.upgrade, "upgrade"),
                        (downgrade, &o.downgrade, "downgrade"),
                    ] {
                        if needed && section.is_none() {
                            errors.push(missing_section(path, script, name));
                        }
                    }
                }
                Err(e) => errors.push(syntax_error(e)),
            }
        }
        // Every body parsed from its file has been added to the packs by now; the command
        // may end without dropping the runner.
        self.packs.borrow_mut().save();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn run(
        &self,
        script: &Script,
        upgrade: bool,
        ctx: &mut MigrationContext,
    ) -> Result<(), BodyError> {
        if let Some(path) = self
            .overrides
            .find(&script.path, &script.revision, ctx.dialect_name())
        {
            return run_override(&path, script, upgrade, ctx);
        }
        let (parsed, hit) = self.parse(script, true)?;
        let (src, module) = &*parsed;
        if !hit && self.packs.borrow().passed_check(script) {
            // Preflight left this body to its pack's clean verdict, but the entry failed its
            // checksum, so the body was read from its file: the verdict no longer vouches
            // for it, and it is checked here, before any of it runs.
            if let Some(e) = check_module(&script.path, src, module).first() {
                return Err(refusal(e));
            }
        }
        let opts = RenderOptions {
            naming_convention: ctx.naming_convention().to_vec(),
        };
        let mut host = ContextHost {
            ctx,
            opts,
            unobserved: 0,
            queued_data: false,
        };
        run_revision_function(&script.path, src, module, function_name(upgrade), &mut host).map_err(
            |e| BodyError {
                message: e.located_message(),
                python_class: e.python_class().to_string(),
            },
        )
    }
}

/// Runs the `-- upgrade` or `-- downgrade` statements of an override file in place of the
/// revision's Python body.
fn run_override(
    path: &std::path::Path,
    script: &Script,
    upgrade: bool,
    ctx: &mut MigrationContext,
) -> Result<(), BodyError> {
    let o = load_override(path).map_err(syntax_error)?;
    let name = function_name(upgrade);
    let section = if upgrade { o.upgrade } else { o.downgrade };
    let Some(statements) = section else {
        return Err(missing_section(path, script, name));
    };
    for st in statements {
        ctx.execute(&st.sql).map_err(|e| BodyError {
            message: format!("{}:{}:1: {e}", path.display(), st.line),
            python_class: e.python_class().to_string(),
        })?;
    }
    Ok(())
}

struct ContextHost<'a> {
    ctx: &'a mut MigrationContext,
    opts: RenderOptions,
    /// Unobserved statements run in line so far. Once a body has sent enough of them, they
    /// go to the context's worker thread (`runtime::pipeline`); while it holds statements
    /// the connection is the worker's, and the context settles it before any other use.
    unobserved: usize,
    /// Whether this body queued data statements: they must have run when it ends.
    queued_data: bool,
}

/// Unobserved statements a body runs in line before a worker thread takes them over: a
/// thread costs about as much as 30 rows of a data loop, and most bodies run none or a few.
const INLINE_UNOBSERVED: usize = 128;

fn runtime_error(e: crate::alembic_compat::runtime::RuntimeError) -> HostError {
    HostError {
        class: e.python_class().to_string(),
        message: e.to_string(),
    }
}

fn ddl_error(e: DdlError) -> HostError {
    HostError {
        class: e.python_qualified_class().to_string(),
        message: e.to_string(),
    }
}

/// A queued statement's failure as the body would have raised it in line: a data statement's
/// as SQLAlchemy's (with its parameters), an operation's or a version row's as the runtime's.
fn detached_failure(f: Failure) -> DetachedFailure {
    let error = match (&f.error, f.shows_params) {
        (QueuedError::Sql { sql, message, code }, true) => {
            data_statement_error(sql, &f.params, message, code)
        }
        (error, _) => runtime_error(error.to_runtime()),
    };
    DetachedFailure { error, pos: f.pos }
}

/// A parameter of a kind SQLite binds directly; the others as the text the in-line path binds.
fn bindable(params: Vec<Literal>) -> Vec<Literal> {
    if params.iter().all(is_plain) {
        return params;
    }
    params
        .into_iter()
        .map(|p| match p {
            plain if is_plain(&plain) => plain,
            other => Literal::Str(sql::literal_sql(&other)),
        })
        .collect()
}

fn is_plain(l: &Literal) -> bool {
    matches!(
        l,
        Literal::None
            | Literal::Bool(_)
            | Literal::Int(_)
            | Literal::Float(_)
            | Literal::Str(_)
            | Literal::Bytes(_)
    )
}

impl ContextHost<'_> {
    /// Waits for the queued statements: the connection is this thread's again.
    fn settle_pipeline(&mut self) -> Result<(), HostError> {
        self.ctx.settle().map_err(|f| detached_failure(f).error)
    }

    fn run_all(&mut self, statements: &[String]) -> Result<(), HostError> {
        for s in statements {
            self.ctx.execute(s).map_err(runtime_error)?;
        }
        Ok(())
    }

    /// A batch block's statements. A failing copy, or a failing `DROP TABLE` of the old
    /// table, drops the new table before it raises, as Alembic does.
    fn run_batch(&mut self, plan: &batch::BatchSql, uncatchable: bool) -> Result<(), HostError> {
        let Some(copy) = &plan.copy else {
            return self.run_all(&plan.statements);
        };
        let (before, from_copy) = plan.statements.split_at(copy.at.min(plan.statements.len()));
        self.run_all(before)?;
        let Some((insert, after)) = from_copy.split_first() else {
            return Ok(());
        };
        // A failure that no `try` catches rolls the whole transaction back.
        let rolls_back = uncatchable
            && self
                .ctx
                .connection()
                .is_some_and(|conn| !conn.is_autocommit());
        let params = &plan.copy_params;
        let copied = match rolls_back
            .then(|| plan.copy_without_statement_journal())
            .flatten()
        {
            Some(quick) => self
                .ctx
                .execute_with_params(&quick, params)
                .map_err(|e| e.shown_as(insert)),
            None => self.ctx.execute_with_params(insert, params),
        };
        let (drop_old, rest) = match after.split_first() {
            Some((d, rest)) => (Some(d), rest),
            None => (None, after),
        };
        let moved = copied.and_then(|()| drop_old.map_or(Ok(()), |d| self.ctx.execute(d)));
        if let Err(e) = moved {
            self.ctx.execute(&copy.drop_new).map_err(runtime_error)?;
            return Err(runtime_error(e));
        }
        self.run_all(rest)
    }

    /// The warnings Alembic gives for `op` whatever the run (once each: a deferred op that
    /// is then applied in line asks twice).
    fn warn_about(&mut self, op: &Op) {
        if ddl::sqlite::skips_implicit_constraint(op) {
            let (origin, message) = ddl::sqlite::IMPLICIT_CONSTRAINT_WARNING;
            self.ctx.log.warn(origin, message);
        }
    }

    fn bulk_insert(
        &mut self,
        table: &ops::TableClause,
        rows: &[Vec<(String, Literal)>],
        multiinsert: bool,
    ) -> Result<(), HostError> {
        if self.ctx.is_offline() {
            let (statements, failure) = ddl::bulk_insert_offline(table, rows);
            self.run_all(&statements)?;
            return failure.map_or(Ok(()), |e| Err(ddl_error(e)));
        }
        for (sql_text, param_rows) in ddl::bulk_insert_sql(table, rows, multiinsert) {
            for params in param_rows {
                self.ctx
                    .execute_with_params(&sql_text, &params)
                    .map_err(runtime_error)?;
            }
        }
        Ok(())
    }
}

impl Host for ContextHost<'_> {
    fn naming_convention(&self) -> Vec<(String, String)> {
        self.opts.naming_convention.clone()
    }

    fn is_offline(&self) -> bool {
        self.ctx.is_offline()
    }

    fn apply(&mut self, op: &Op, _pos: &SourcePos, uncatchable: bool) -> Result<(), HostError> {
        self.settle_pipeline()?;
        self.warn_about(op);
        match op {
            Op::Batch(b) => {
                let plan = match self.ctx.connection() {
                    Some(conn) => batch::batch_statements(conn, b, &self.opts),
                    None => batch::batch_statements_offline(b, &self.opts),
                }
                .map_err(ddl_error)?;
                for w in &plan.warnings {
                    self.ctx.log.warn(batch::UNNAMED_CHECK_WARNING_ORIGIN, w);
                }
                self.run_batch(&plan, uncatchable)
            }
            Op::BulkInsert {
                table,
                rows,
                multiinsert,
            } => self.bulk_insert(table, rows, *multiinsert),
            // As text(): `:name` parameters bound (an unbound one is SQLAlchemy's error, or
            // NULL offline) and `\:` unescaped, whether or not the body gave values.
            Op::Execute(ops::Statement::Text { sql: text, params }) => {
                let rendered = sql::render(
                    &Statement::Text {
                        sql: text.clone(),
                        params: params.clone(),
                    },
                    self.ctx.is_offline(),
                );
                if let Some(key) = rendered.unbound {
                    return Err(HostError {
                        class: "sqlalchemy.exc.StatementError".into(),
                        message: sql::unbound_message(&key, &rendered.sql),
                    });
                }
                if rendered.params.is_empty() {
                    return self.ctx.execute(&rendered.sql).map_err(runtime_error);
                }
                let values: Vec<Literal> = rendered.params.into_iter().map(|(l, _)| l).collect();
                self.ctx
                    .execute_with_params(&rendered.sql, &values)
                    .map_err(runtime_error)
            }
            other => {
                // Alembic runs the statements an op emits before it raises; so do we (the
                // unit's rollback then undoes them).
                let (statements, failure) = ddl::render_op_steps(other, &self.opts);
                self.run_all(&statements)?;
                match failure {
                    Some(e) => Err(ddl_error(e)),
                    None => Ok(()),
                }
            }
        }
    }

    fn query(&mut self, sql_text: &str, params: &[Literal]) -> Result<QueryOutput, HostError> {
        let mut rows = Vec::new();
        let shape = self.query_each(sql_text, params, &mut |cells| {
            rows.push(cells.iter().map(Cell::to_literal).collect());
            true
        })?;
        Ok(QueryOutput {
            columns: shape.columns,
            rows,
            rowcount: shape.rowcount,
        })
    }

    fn query_each(
        &mut self,
        sql_text: &str,
        params: &[Literal],
        row: &mut dyn FnMut(&[Cell<'_>]) -> bool,
    ) -> Result<QueryShape, HostError> {
        self.settle_pipeline()?;
        let Some(conn) = self.ctx.connection() else {
            return Err(HostError {
                class: "AttributeError".into(),
                message: "'NoneType' object has no attribute 'execute' (no database in --sql mode)"
                    .into(),
            });
        };
        if crate::alembic_compat::runtime::pipeline::holds_no_statement(sql_text) {
            // Python's sqlite3 runs it as a statement with no columns and no rows.
            return Ok(QueryShape {
                columns: Vec::new(),
                rowcount: -1,
            });
        }
        let sql_error = |e| statement_error(sql_text, params, e);
        let mut stmt = prepare_statement(conn, sql_text, params)?;
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let converted;
        let bound = if params.iter().all(is_plain) {
            params
        } else {
            converted = bindable(params.to_vec());
            &converted
        };
        let values = bound.iter().map(Param);
        let n = columns.len();
        let rowcount = if n == 0 {
            let changed = stmt
                .execute(rusqlite::params_from_iter(values))
                .map_err(sql_error)?;
            i64::try_from(changed).unwrap_or(i64::MAX)
        } else {
            let mut cursor = stmt
                .query(rusqlite::params_from_iter(values))
                .map_err(sql_error)?;
            while let Some(r) = cursor.next().map_err(sql_error)? {
                let mut cells = Vec::with_capacity(n);
                for i in 0..n {
                    cells.push(match r.get_ref(i).map_err(sql_error)? {
                        rusqlite::types::ValueRef::Null => Cell::Null,
                        rusqlite::types::ValueRef::Integer(v) => Cell::Int(v),
                        rusqlite::types::ValueRef::Real(v) => Cell::Float(v),
                        // Valid UTF-8 (nearly always) goes through the plain validator: the
                        // lossy one walks the text in chunks, and decoding a data loop's
                        // 10,000 rows of text took 3.0M instructions with it, 1.7M without.
                        rusqlite::types::ValueRef::Text(t) => {
                            Cell::Text(match std::str::from_utf8(t) {
                                Ok(text) => std::borrow::Cow::Borrowed(text),
                                Err(_) => String::from_utf8_lossy(t),
                            })
                        }
                        rusqlite::types::ValueRef::Blob(b) => Cell::Blob(b),
                    });
                }
                if !row(&cells) {
                    break;
                }
            }
            -1
        };
        Ok(QueryShape { columns, rowcount })
    }

    fn x_arguments(&self) -> Vec<String> {
        self.ctx.x_arguments().to_vec()
    }

    /// Output waits for the background statements, and a failed one silences it: the body
    /// stops at the failure (the interpreter settles before printing, so this is a backstop).
    fn print(&mut self, text: &str) {
        if self.settle_pipeline().is_ok() {
            self.ctx.print_stdout(text);
        }
    }

    fn log(&mut self, level: u32, logger: &str, message: &str) {
        if self.settle_pipeline().is_err() {
            return;
        }
        let level = match level {
            0..=10 => Level::Debug,
            11..=20 => Level::Info,
            21..=30 => Level::Warning,
            _ => Level::Error,
        };
        self.ctx.log.log(logger, level, message);
    }

    fn execute_unobserved(
        &mut self,
        sql: String,
        params: Vec<Literal>,
        pos: &SourcePos,
    ) -> Result<(), DetachedFailure> {
        if !self.ctx.is_queueing() {
            self.unobserved += 1;
            if self.unobserved <= INLINE_UNOBSERVED || !self.ctx.start_queueing() {
                return execute_in_line(self, &sql, &params, pos);
            }
        }
        let issued = Issued {
            pos: pos.clone(),
            step: self.ctx.step(),
            shows_params: true,
            one_row: None,
        };
        self.queued_data = true;
        self.ctx
            .queue(sql, bindable(params), issued)
            .map_err(detached_failure)
    }

    fn settle(&mut self) -> Result<(), DetachedFailure> {
        self.ctx.settle().map_err(detached_failure)
    }

    /// Operations other than batch blocks and `op.execute` (whose text may hold several
    /// statements) render without reading the database, so their statements can run while
    /// the interpreter goes on, into later revisions.
    fn defer(&mut self, op: &Op, pos: &SourcePos) -> Result<bool, DetachedFailure> {
        if !self.ctx.defers_operations() {
            return Ok(false);
        }
        self.warn_about(op);
        let statements: Vec<(String, Vec<Literal>)> = match op {
            Op::Batch(_) | Op::Execute(_) => return Ok(false),
            Op::BulkInsert {
                table,
                rows,
                multiinsert,
            } => {
                let mut all = Vec::new();
                for (sql_text, param_rows) in ddl::bulk_insert_sql(table, rows, *multiinsert) {
                    for params in param_rows {
                        // The in-line path refuses other kinds with its own error.
                        if !params.iter().all(is_plain) {
                            return Ok(false);
                        }
                        all.push((sql_text.clone(), params));
                    }
                }
                all
            }
            other => {
                let (statements, failure) = ddl::render_op_steps(other, &self.opts);
                if failure.is_some() {
                    return Ok(false);
                }
                statements.into_iter().map(|s| (s, Vec::new())).collect()
            }
        };
        if !self.ctx.is_queueing() && !self.ctx.start_queueing() {
            return Ok(false);
        }
        for (sql_text, params) in statements {
            let issued = Issued {
                pos: pos.clone(),
                step: self.ctx.step(),
                shows_params: false,
                one_row: None,
            };
            self.ctx
                .queue(sql_text, params, issued)
                .map_err(detached_failure)?;
        }
        self.ctx.send_queued().map_err(detached_failure)?;
        Ok(true)
    }

    fn finish(&mut self) -> Result<(), DetachedFailure> {
        if self.queued_data {
            self.settle()
        } else {
            Ok(())
        }
    }
}

/// A data statement's failure as SQLAlchemy raises it: SQLite's message, the statement, its
/// parameters (when it has any) and the page explaining the error's class.
fn statement_error(sql_text: &str, params: &[Literal], e: rusqlite::Error) -> HostError {
    let (message, code) = split_sqlite_error(e);
    data_statement_error(sql_text, params, &message, &code)
}

fn data_statement_error(
    sql_text: &str,
    params: &[Literal],
    message: &str,
    code: &Option<rusqlite::ErrorCode>,
) -> HostError {
    HostError {
        class: sqlalchemy_class(code).into(),
        message: dbapi_message(code, message, Some(sql_text), &params_detail(params)),
    }
}

/// `[parameters: (...)]` as SQLAlchemy shows the values it handed the driver: a Python tuple,
/// each value's repr cut to 300 characters around the middle (empty without parameters).
fn params_detail(params: &[Literal]) -> String {
    if params.is_empty() {
        return String::new();
    }
    let items: Vec<String> = params.iter().map(|p| truncated(literal_repr(p))).collect();
    let tuple = if items.len() == 1 {
        format!("({},)", items[0])
    } else {
        format!("({})", items.join(", "))
    };
    format!("\n[parameters: {tuple}]")
}

/// A bound value's repr, as the interpreter reprs the value it reads back as.
fn literal_repr(l: &Literal) -> String {
    match super::native::load_literal(l.clone(), None) {
        Ok(v) => super::builtins::repr(&v),
        Err(_) => super::builtins::str_repr(&sql::literal_sql(l)),
    }
}

/// SQLAlchemy's `_repr_base.trunc`: a repr longer than 300 characters keeps its first and last
/// 150.
pub(super) fn truncated(repr: String) -> String {
    const MAX: usize = 300;
    let n = repr.chars().count();
    if n <= MAX {
        return repr;
    }
    let head: String = repr.chars().take(MAX / 2).collect();
    let tail: String = repr.chars().skip(n - MAX / 2).collect();
    format!("{head} ... ({} characters truncated) ... {tail}", n - MAX)
}

/// Its failure (a syntax error, a missing table) names the parameters too, as SQLAlchemy's
/// does: Python's sqlite3 prepares while executing with them.
fn prepare_statement<'c>(
    conn: &'c rusqlite::Connection,
    sql_text: &str,
    params: &[Literal],
) -> Result<rusqlite::CachedStatement<'c>, HostError> {
    conn.prepare_cached(sql_text)
        .map_err(|e| statement_error(sql_text, params, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(sql_text: &str, params: &[Literal]) -> HostError {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL, b BOOLEAN)")
            .unwrap();
        let failed = match prepare_statement(&conn, sql_text, params) {
            Ok(mut stmt) => {
                crate::alembic_compat::runtime::pipeline::run_discarding(&mut stmt, params)
                    .map_err(|e| statement_error(sql_text, params, e))
                    .unwrap_err()
            }
            Err(e) => e,
        };
        failed
    }

    /// The expected texts are `str()` of what SQLAlchemy 2.1 raised for the same statements
    /// (`conn.execute(sa.text(...), params)` on SQLite).
    #[test]
    fn statement_errors_read_as_sqlalchemy_s() {
        let e = failure(
            "insert into t (id, v) values (?, ?)",
            &[Literal::Int(1), Literal::None],
        );
        assert_eq!(e.class, "sqlalchemy.exc.IntegrityError");
        assert_eq!(
            e.message,
            "(sqlite3.IntegrityError) NOT NULL constraint failed: t.v\n\
             [SQL: insert into t (id, v) values (?, ?)]\n\
             [parameters: (1, None)]\n\
             (Background on this error at: https://sqlalche.me/e/21/gkpj)"
        );
        let e = failure(
            "insert into t (id, v, b) values (?, ?, ?)",
            &[
                Literal::Str("x'y".into()),
                Literal::None,
                Literal::Bool(true),
            ],
        );
        assert_eq!(
            e.message,
            "(sqlite3.IntegrityError) datatype mismatch\n\
             [SQL: insert into t (id, v, b) values (?, ?, ?)]\n\
             [parameters: (\"x'y\", None, True)]\n\
             (Background on this error at: https://sqlalche.me/e/21/gkpj)"
        );
        // A statement SQLite cannot prepare names its parameters too.
        let e = failure(
            "SELECT ? AS lit, NULL AS nothing",
            &[Literal::Str("x".into())],
        );
        assert_eq!(e.class, "sqlalchemy.exc.OperationalError");
        assert_eq!(
            e.message,
            "(sqlite3.OperationalError) near \"nothing\": syntax error\n\
             [SQL: SELECT ? AS lit, NULL AS nothing]\n\
             [parameters: ('x',)]\n\
             (Background on this error at: https://sqlalche.me/e/21/e3q8)"
        );
        let e = failure("insert into t (id, v) values (1, null)", &[]);
        assert_eq!(
            e.message,
            "(sqlite3.IntegrityError) NOT NULL constraint failed: t.v\n\
             [SQL: insert into t (id, v) values (1, null)]\n\
             (Background on this error at: https://sqlalche.me/e/21/gkpj)"
        );
        let e = failure("select nosuch from t", &[]);
        assert_eq!(e.class, "sqlalchemy.exc.OperationalError");
        assert_eq!(
            e.message,
            "(sqlite3.OperationalError) no such column: nosuch\n\
             [SQL: select nosuch from t]\n\
             (Background on this error at: https://sqlalche.me/e/21/e3q8)"
        );
    }

    #[test]
    fn long_parameters_keep_their_ends() {
        let long = "x".repeat(400);
        let shown = params_detail(&[Literal::Str(long), Literal::Float(0.5)]);
        let want = format!(
            "\n[parameters: ('{} ... (102 characters truncated) ... {}', 0.5)]",
            "x".repeat(149),
            "x".repeat(149)
        );
        assert_eq!(shown, want);
    }
}

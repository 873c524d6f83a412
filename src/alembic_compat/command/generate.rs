//! The history-writing commands: `init`, `list_templates`, `revision` (without
//! autogenerate) and `merge`, as `alembic/command.py` and `ScriptDirectory.generate_revision`
//! / `_rev_path` (`alembic/script/base.py`) do them, with Alembic's console output, errors and
//! exit statuses.
//!
//! Owns: file names from `file_template`, the slug, the create date (with `timezone`), where
//! the file goes among the version locations, the template variables, post-write hooks of type
//! `exec`. Does not own: the template language ([`crate::alembic_compat::mako`]), the graph
//! ([`crate::alembic_compat::revision`]) or the generic template's text ([`super::templates`]).
//!
//! `revision --autogenerate` gets its operations from [`super::autogen`]. Differences from
//! Alembic: env.py is not executed when `revision_environment` is set (its logging is reproduced and the
//! template receives the empty `upgrades`/`downgrades` blocks env.py would produce);
//! `console_scripts` and `module` post-write hooks are refused before anything is written;
//! a template that fails to render reports `path:line:col` instead of a temporary file.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Local, NaiveDateTime, Utc};

use super::templates::{KNOWN_UNSUPPORTED, TEMPLATES};
use super::{Ctx, Failure, ScriptDirectory};
use crate::alembic_compat::config::pyutil::{path_absolute, path_parent, pure_path, py_repr};
use crate::alembic_compat::config::Config;
use crate::alembic_compat::eval::builtins::percent_format;
use crate::alembic_compat::eval::interp::Unwind;
use crate::alembic_compat::eval::native::{uuid4, Native};
use crate::alembic_compat::eval::value::{DateTimeValue, Temporal, Value};
use crate::alembic_compat::mako::{Template, TemplateError};
use crate::alembic_compat::revision::{
    catch_revision_errors, CatchRevisionErrors, Resolved, RevArg, Revision,
};
use crate::alembic_compat::script::directory::{load_one, LoadError};

/// `util.status(msg)`: `msg ...` before the work, `  done` or `  FAILED` after it.
fn status<T>(
    ctx: &mut Ctx,
    msg: &str,
    work: impl FnOnce(&mut Ctx) -> Result<T, Failure>,
) -> Result<T, Failure> {
    ctx.print_raw(&format!("{msg} ..."));
    let r = work(ctx);
    ctx.print_raw(if r.is_ok() { "  done\n" } else { "  FAILED\n" });
    r
}

fn os_error(e: &std::io::Error, path: &str) -> Failure {
    let class = match e.kind() {
        std::io::ErrorKind::AlreadyExists => "FileExistsError",
        std::io::ErrorKind::NotFound => "FileNotFoundError",
        std::io::ErrorKind::PermissionDenied => "PermissionError",
        _ => "OSError",
    };
    let errno = e.raw_os_error().unwrap_or(0);
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    Failure::python(class, &format!("[Errno {errno}] {text}: {}", py_repr(path)))
}

fn makedirs(path: &str) -> Result<(), Failure> {
    std::fs::create_dir_all(path).map_err(|e| os_error(&e, path))
}

fn write_file(path: &str, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes).map_err(|e| os_error(&e, path))
}

/// `pathlib`'s `relative_to(base, walk_up=True)` for two absolute, normalised paths.
fn relative_walk_up(path: &str, base: &str) -> String {
    let p: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let b: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<&str> = vec![".."; b.len() - common];
    parts.extend(&p[common..]);
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

// ------------------------------------------------------------------------------------ init

/// `alembic list_templates`, listing the templates ralembic writes.
pub fn list_templates(ctx: &mut Ctx) -> Result<(), Failure> {
    ctx.print("Available templates:\n");
    for t in TEMPLATES {
        ctx.print(&format!("{} - {}", t.name, t.synopsis));
    }
    ctx.print("\nTemplates are used via the 'init' command, e.g.:");
    ctx.print("\n  alembic init --template generic ./scripts");
    Ok(())
}

/// `alembic init [-t TEMPLATE] [--package] DIRECTORY`.
pub fn init(
    config: &Config,
    ctx: &mut Ctx,
    directory: &str,
    template: &str,
    package: bool,
) -> Result<(), Failure> {
    let cwd = config.cwd.to_string_lossy().into_owned();
    let shown = pure_path(directory);
    let dir_abs = path_absolute(directory, &cwd);
    let dir_path = Path::new(&dir_abs);
    if dir_path.exists() {
        let mut entries = std::fs::read_dir(dir_path).map_err(|e| os_error(&e, &shown))?;
        if entries.next().is_some() {
            return Err(Failure::Command(format!(
                "Directory {shown} already exists and is not empty"
            )));
        }
    }
    let Some(tpl) = TEMPLATES.iter().find(|t| t.name == template) else {
        if KNOWN_UNSUPPORTED.contains(&template) {
            return Err(Failure::Command(format!(
                "Template '{template}' is not supported by ralembic yet (supported: {})",
                TEMPLATES
                    .iter()
                    .map(|t| t.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        // Alembic names its own install directory here, which we do not have.
        return Err(Failure::Command(format!(
            "No such template alembic/templates/{template}"
        )));
    };
    if !dir_path.exists() {
        status(ctx, &format!("Creating directory {dir_abs}"), |_| {
            makedirs(&dir_abs)
        })?;
    }
    let versions = format!("{dir_abs}/versions");
    status(ctx, &format!("Creating directory {versions}"), |_| {
        std::fs::create_dir(&versions).map_err(|e| os_error(&e, &versions))
    })?;

    let ini_name = config
        .config_file_name
        .clone()
        .unwrap_or_else(|| "alembic.ini".to_string());
    let config_file = path_absolute(&ini_name, &cwd);
    let script_location = if directory.starts_with('/') {
        shown.clone()
    } else {
        let rel = relative_walk_up(&dir_abs, &path_parent(&config_file));
        if rel == "." {
            "%(here)s".to_string()
        } else {
            format!("%(here)s/{rel}")
        }
    };

    for (name, content) in tpl.files {
        let dest = format!("{dir_abs}/{name}");
        status(ctx, &format!("Generating {dest}"), |_| {
            write_file(&dest, content.as_bytes())
        })?;
    }
    if Path::new(&config_file).exists() {
        ctx.print(&format!("File {config_file} already exists, skipping"));
    } else {
        // alembic.ini.mako's only Mako construct is this one substitution.
        let text = tpl.ini.replace("${script_location}", &script_location);
        status(ctx, &format!("Generating {config_file}"), |_| {
            write_file(&config_file, text.as_bytes())
        })?;
    }
    if package {
        for path in [
            format!("{dir_abs}/__init__.py"),
            format!("{versions}/__init__.py"),
        ] {
            status(ctx, &format!("Adding {path}"), |_| write_file(&path, b""))?;
        }
    }
    ctx.print(&format!(
        "Please edit configuration/connection/logging settings in {config_file} before proceeding."
    ));
    Ok(())
}

// -------------------------------------------------------------------------------- revision

/// What `revision` / `merge` were asked for (`RevisionContext.command_args`).
#[derive(Debug, Clone, Default)]
pub struct RevisionArgs {
    pub message: Option<String>,
    pub sql: bool,
    /// `None`: Alembic's default `"head"`; `merge` passes its revisions.
    pub head: Option<RevArg>,
    pub splice: bool,
    pub branch_label: Option<String>,
    pub version_path: Option<String>,
    pub rev_id: Option<String>,
    pub depends_on: Vec<String>,
    /// `--autogenerate`, with where the target schema comes from.
    pub autogenerate: Option<super::autogen::Target>,
}

/// `util.rev_id()`: the last 12 hex digits of a random UUID.
pub fn new_rev_id() -> String {
    let hex: String = uuid4().chars().filter(|c| *c != '-').collect();
    hex[hex.len() - 12..].to_string()
}

/// `alembic revision` without `--autogenerate`.
pub fn revision(sd: &ScriptDirectory, ctx: &mut Ctx, args: &RevisionArgs) -> Result<(), Failure> {
    let rev_id = args
        .rev_id
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(new_rev_id);
    if let Some(target) = &args.autogenerate {
        if args.sql {
            return Err(Failure::Command(
                "Using --sql with --autogenerate does not make any sense".into(),
            ));
        }
        let r = super::autogen::autogenerate_vars(sd, ctx, target)?;
        let extra = vec![
            ("upgrades", Value::str(r.upgrades)),
            ("downgrades", Value::str(r.downgrades)),
            ("imports", Value::str(r.imports)),
        ];
        return generate_revision(sd, ctx, &rev_id, args, extra);
    }
    let environment = sd
        .config
        .revision_environment()
        .map_err(|e| super::config_failure(&e))?;
    if !environment && args.sql {
        return Err(Failure::Command(
            "Using --sql with the revision command when revision_environment is not configured does not make any sense".into(),
        ));
    }
    let mut extra = Vec::new();
    if environment {
        run_env_emulation(sd, ctx, args.sql)?;
        // What `_render_python_into_templatevars` gives for a revision with no operations.
        let body = "# ### commands auto generated by Alembic - please adjust! ###\n    pass\n    # ### end Alembic commands ###";
        extra.push(("upgrades", Value::str(body)));
        extra.push(("downgrades", Value::str(body)));
        extra.push(("imports", Value::str("")));
    }
    generate_revision(sd, ctx, &rev_id, args, extra)
}

/// `alembic merge`.
pub fn merge(sd: &ScriptDirectory, ctx: &mut Ctx, args: &RevisionArgs) -> Result<(), Failure> {
    let environment = sd
        .config
        .revision_environment()
        .map_err(|e| super::config_failure(&e))?;
    if environment {
        run_env_emulation(sd, ctx, false)?;
    }
    let rev_id = args
        .rev_id
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(new_rev_id);
    generate_revision(sd, ctx, &rev_id, args, Vec::new())
}

/// env.py is not executed; what it would show on stderr (its logging) is.
fn run_env_emulation(sd: &ScriptDirectory, ctx: &mut Ctx, sql: bool) -> Result<(), Failure> {
    let (_, mut log) = super::migrate::environment(sd, sql, None)?;
    log.context_created(sql);
    let _ = ctx.err.write_all(log.take().as_bytes());
    Ok(())
}

fn exc_failure(u: Unwind) -> Failure {
    match u {
        Unwind::Exc(e) | Unwind::Detached(e) => Failure::python(&e.class, &e.message),
        Unwind::Unsupported(r) => {
            Failure::python("NotImplementedError", &format!("{}: {}", r.what, r.why))
        }
    }
}

/// `ScriptDirectory.generate_revision`.
fn generate_revision(
    sd: &ScriptDirectory,
    ctx: &mut Ctx,
    rev_id: &str,
    args: &RevisionArgs,
    extra: Vec<(&'static str, Value)>,
) -> Result<(), Failure> {
    Revision::verify_rev_id(rev_id).map_err(|e| Failure::Command(e.to_string()))?;
    let head = args.head.clone().unwrap_or_else(|| RevArg::from("head"));
    let r = sd.revisions(ctx, true)?;
    let catch = CatchRevisionErrors {
        multiple_heads: Some(
            "Multiple heads are present; please specify the head revision on which the new revision should be based, or perform a merge."
                .into(),
        ),
        ..Default::default()
    };
    let heads = r
        .map
        .get_revisions(&head)
        .map_err(|e| super::script_error_failure(catch_revision_errors(e, &catch)))?;
    if heads.contains(&Resolved::Base) {
        return Err(Failure::python("AssertionError", ""));
    }
    let mut seen = std::collections::HashSet::new();
    if !heads.iter().all(|h| seen.insert(*h)) {
        return Err(Failure::Command(
            "Duplicate head revisions specified".into(),
        ));
    }
    let hooks = check_hooks(&sd.settings.hooks)?;
    let create_date = create_date(sd.settings.timezone.as_deref())?;

    let cwd = sd.cwd.to_string_lossy().into_owned();
    let locations = sd
        .settings
        .version_dirs(&sd.cwd)
        .map_err(|e| super::config_failure(&e))?;
    let version_path: String = match &args.version_path {
        None if locations.len() > 1 => {
            let first = heads.iter().find_map(|h| h.rev());
            match first {
                Some(i) => r.scripts[i]
                    .path
                    .parent()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                None => {
                    return Err(Failure::Command(
                        "Multiple version locations present, please specify --version-path".into(),
                    ))
                }
            }
        }
        None => locations
            .first()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Some(v) => pure_path(v),
    };
    let norm = path_absolute(&version_path, &cwd);
    if !locations
        .iter()
        .any(|l| path_absolute(&l.to_string_lossy(), &cwd) == norm)
    {
        return Err(Failure::Command(format!(
            "Path {version_path} is not represented in current version locations"
        )));
    }
    let configured = sd
        .settings
        .version_locations
        .as_ref()
        .is_some_and(|l| !l.is_empty());
    if configured {
        ensure_directory(ctx, &norm)?;
    }
    let file_name = rev_file_name(
        &sd.settings.file_template,
        sd.settings.truncate_slug_length,
        rev_id,
        args.message.as_deref(),
        &create_date,
    )?;
    let path = format!("{version_path}/{file_name}");
    let path_abs = path_absolute(&path, &cwd);
    ensure_directory(ctx, &path_parent(&path_abs))?;

    if !args.splice {
        for h in heads.iter().filter_map(|h| h.rev()) {
            if !r.map.nodes()[h].is_head() {
                return Err(Failure::Command(format!(
                    "Revision {} is not a head revision; please specify --splice to create a new branch from this revision",
                    r.map.id(h)
                )));
            }
        }
    }

    let depends_on = if args.depends_on.is_empty() {
        Value::None
    } else {
        let mut resolved = Vec::new();
        for dep in &args.depends_on {
            let found = r
                .map
                .get_revision(&RevArg::from(dep.as_str()))
                .map_err(|e| {
                    super::script_error_failure(catch_revision_errors(
                        e,
                        &CatchRevisionErrors::default(),
                    ))
                })?;
            let Some(i) = found else {
                return Err(Failure::python("AssertionError", ""));
            };
            let node = &r.map.nodes()[i];
            resolved.push(if node.branch_labels().contains(dep) {
                dep.clone()
            } else {
                node.id().to_string()
            });
        }
        scalar_or(resolved, Value::list)
    };
    let down: Vec<Option<String>> = heads
        .iter()
        .map(|h| h.rev().map(|i| r.map.id(i).to_string()))
        .collect();
    let down_revision = match down.len() {
        0 => Value::None,
        1 => down[0].clone().map_or(Value::None, Value::str),
        _ => Value::tuple(
            down.into_iter()
                .map(|d| d.map_or(Value::None, Value::str))
                .collect(),
        ),
    };
    let branch_labels = match &args.branch_label {
        Some(l) => Value::tuple(vec![Value::str(l.as_str())]),
        None => Value::None,
    };
    let mut vars: Vec<(&str, Value)> = vec![
        ("up_revision", Value::str(rev_id)),
        ("down_revision", down_revision),
        ("branch_labels", branch_labels),
        ("depends_on", depends_on),
        (
            "create_date",
            Value::native(Native::Temporal(Temporal::DateTime(
                create_date.value.clone(),
            ))),
        ),
        (
            "comma",
            Value::native(Native::Func("alembic.util.format_as_comma".into())),
        ),
        (
            "message",
            Value::str(args.message.as_deref().unwrap_or("empty message")),
        ),
        ("config", Value::native(Native::Opaque("Config".into()))),
    ];
    vars.extend(extra);

    let template_path = sd.dir().join("script.py.mako");
    status(ctx, &format!("Generating {path_abs}"), |_| {
        render_to_file(
            &template_path,
            &path_abs,
            &sd.settings.output_encoding,
            &vars,
        )
    })?;
    run_hooks(ctx, &hooks, &path_abs)?;

    // Script._from_path: the new file is read back as Alembic imports it.
    let name_ok = file_name_is_revision(&path_abs);
    if !name_ok {
        return Ok(());
    }
    let script = load_one(Path::new(&path_abs)).map_err(|e| match e {
        LoadError::NoRevision(_) => Failure::Command(e.to_string()),
        other => Failure::Python {
            lines: vec![other.to_string()],
        },
    })?;
    if args.branch_label.is_some() && script.meta.branch_labels.is_empty() {
        return Err(Failure::Command(format!(
            "Version {} specified branch_labels {}, however the migration file {} does not have them; have you upgraded your script.py.mako to include the 'branch_labels' section?",
            script.revision,
            args.branch_label.as_deref().unwrap_or_default(),
            script.path.display()
        )));
    }
    // revision_map.add_revision: a label already naming a revision or label is an error
    // Alembic does not catch (the file stays written).
    for label in &script.meta.branch_labels {
        if let Some(owner) = r.map.lookup(label) {
            return Err(Failure::python(
                "alembic.script.revision.RevisionError",
                &format!(
                    "Branch name '{label}' in revision {} already used by revision {}",
                    script.revision,
                    r.map.id(owner)
                ),
            ));
        }
    }
    Ok(())
}

/// Alembic's `_only_source_rev_file`, which decides whether `_from_path` reads the file.
fn file_name_is_revision(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".py") && !name.starts_with(".#") && !name.starts_with("__init__")
}

/// `tuple_rev_as_scalar`: nothing -> None, one -> the string, several -> `many(...)`.
fn scalar_or(items: Vec<String>, many: fn(Vec<Value>) -> Value) -> Value {
    match items.len() {
        0 => Value::None,
        1 => Value::str(items[0].as_str()),
        _ => many(items.into_iter().map(Value::str).collect()),
    }
}

/// `_ensure_directory`: creates a missing directory, saying so.
fn ensure_directory(ctx: &mut Ctx, abs: &str) -> Result<(), Failure> {
    if Path::new(abs).exists() {
        return Ok(());
    }
    status(ctx, &format!("Creating directory {abs}"), |_| makedirs(abs))
}

fn render_to_file(
    template_path: &Path,
    dest: &str,
    encoding: &str,
    vars: &[(&str, Value)],
) -> Result<(), Failure> {
    let shown = template_path.display().to_string();
    let src = std::fs::read(template_path).map_err(|e| os_error(&e, &shown))?;
    let src = String::from_utf8(src).map_err(|e| {
        Failure::python(
            "UnicodeDecodeError",
            &format!(
                "'utf-8' codec can't decode byte at offset {} in {shown}",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    if !matches!(
        encoding.to_ascii_lowercase().replace('_', "-").as_str(),
        "utf-8" | "utf8"
    ) {
        return Err(Failure::python(
            "NotImplementedError",
            &format!("output_encoding {encoding} is not supported by ralembic (only utf-8)"),
        ));
    }
    let template = Template::compile(&shown, &src).map_err(template_failure)?;
    let text = template.render(vars).map_err(template_failure)?;
    write_file(dest, text.as_bytes())
}

fn template_failure(e: TemplateError) -> Failure {
    match e {
        TemplateError::Syntax(m) => Failure::python("mako.exceptions.SyntaxException", &m),
        TemplateError::Unsupported(m) => Failure::python("NotImplementedError", &m),
        TemplateError::Render(m) => Failure::Command(format!("Template rendering failed: {m}")),
    }
}

// ------------------------------------------------------------------------------ file name

/// `datetime.now()` (naive local) or, with `timezone`, the aware time in that zone.
pub struct CreateDate {
    pub value: DateTimeValue,
    /// Seconds since the epoch (`int(create_date.timestamp())`).
    pub epoch: i64,
}

fn create_date(timezone: Option<&str>) -> Result<CreateDate, Failure> {
    let now: DateTime<Utc> = Utc::now();
    let epoch = now.timestamp();
    let value = match timezone {
        None => DateTimeValue {
            naive: now.with_timezone(&Local).naive_local(),
            offset: None,
        },
        Some(name) => {
            let offset = match super::tz::utc_offset(name, epoch)? {
                Some(o) => o,
                None => match super::tz::utc_offset(&name.to_uppercase(), epoch)? {
                    Some(o) => o,
                    None => return Err(Failure::Command(format!("Can't locate timezone: {name}"))),
                },
            };
            DateTimeValue {
                naive: now.naive_utc() + chrono::Duration::seconds(i64::from(offset)),
                offset: Some(offset),
            }
        }
    };
    Ok(CreateDate { value, epoch })
}

/// Alembic's slug: the message's `\w+` runs joined by `_`, lower-cased, cut at a word
/// boundary to `truncate` characters (with a trailing `_`).
pub fn slug(message: Option<&str>, truncate: i64) -> String {
    // Python's `\w` on str: alphanumeric characters and '_'.
    let is_word = |c: char| c == '_' || c.is_alphanumeric();
    let words: Vec<&str> = message
        .unwrap_or("")
        .split(|c: char| !is_word(c))
        .filter(|w| !w.is_empty())
        .collect();
    let slug = words.join("_").to_lowercase();
    let len = slug.chars().count() as i64;
    if len <= truncate {
        return slug;
    }
    // slug[:truncate] with Python's negative-index semantics.
    let cut = if truncate < 0 {
        (len + truncate).max(0)
    } else {
        truncate
    } as usize;
    let head: String = slug.chars().take(cut).collect();
    let kept = match head.rfind('_') {
        Some(i) => &head[..i],
        None => head.as_str(),
    };
    format!("{kept}_")
}

/// `_rev_path`'s file name: `file_template % {...}` plus `.py`.
fn rev_file_name(
    file_template: &str,
    truncate: i64,
    rev_id: &str,
    message: Option<&str>,
    date: &CreateDate,
) -> Result<String, Failure> {
    let n: NaiveDateTime = date.value.naive;
    use chrono::{Datelike, Timelike};
    let items = vec![
        ("rev", Value::str(rev_id)),
        ("slug", Value::str(slug(message, truncate))),
        ("epoch", Value::Int(date.epoch)),
        ("year", Value::Int(i64::from(n.year()))),
        ("month", Value::Int(i64::from(n.month()))),
        ("day", Value::Int(i64::from(n.day()))),
        ("hour", Value::Int(i64::from(n.hour()))),
        ("minute", Value::Int(i64::from(n.minute()))),
        ("second", Value::Int(i64::from(n.second()))),
    ];
    let dict = Value::dict(items.into_iter().map(|(k, v)| (Value::str(k), v)).collect());
    let name = percent_format(file_template, &dict).map_err(exc_failure)?;
    Ok(format!("{name}.py"))
}

// ---------------------------------------------------------------------------------- hooks

/// A post-write hook we can run: its name, executable, options string and cwd.
struct ExecHook {
    name: String,
    executable: String,
    options: String,
    cwd: Option<String>,
}

fn hook_option<'a>(hook: &'a [(String, String)], key: &str) -> Option<&'a str> {
    hook.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Checks the configured hooks before anything is written: only `exec` hooks run here.
fn check_hooks(hooks: &[Vec<(String, String)>]) -> Result<Vec<ExecHook>, Failure> {
    let mut out = Vec::new();
    for hook in hooks {
        let name = hook_option(hook, "_hook_name")
            .unwrap_or_default()
            .to_string();
        let Some(kind) = hook_option(hook, "type") else {
            return Err(Failure::Command(format!(
                "Key '{name}.type' (or 'type' in toml) is required for post write hook {}",
                py_repr(&name)
            )));
        };
        match kind {
            "exec" => {
                let executable = hook_option(hook, "executable").ok_or_else(|| {
                    Failure::Command(format!(
                        "Key {name}.executable is required for post write hook {}",
                        py_repr(&name)
                    ))
                })?;
                out.push(ExecHook {
                    name: name.clone(),
                    executable: executable.to_string(),
                    options: hook_option(hook, "options").unwrap_or_default().to_string(),
                    cwd: hook_option(hook, "cwd").map(str::to_string),
                });
            }
            "console_scripts" | "module" => {
                return Err(Failure::Command(format!(
                    "post write hook {} of type '{kind}' is not supported by ralembic (it needs Python); use type = exec",
                    py_repr(&name)
                )))
            }
            other => {
                return Err(Failure::Command(format!(
                    "No formatter with name '{other}' registered"
                )))
            }
        }
    }
    Ok(out)
}

/// `shlex.split(s)` in POSIX mode (quotes and backslashes; no comments).
fn shlex_split(s: &str) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(Failure::python("ValueError", "No closing quotation")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => {
                                return Err(Failure::python("ValueError", "No closing quotation"))
                            }
                        },
                        Some(x) => cur.push(x),
                        None => return Err(Failure::python("ValueError", "No closing quotation")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(x) => cur.push(x),
                    None => return Err(Failure::python("ValueError", "No escaped character")),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

const REVISION_SCRIPT_TOKEN: &str = "REVISION_SCRIPT_FILENAME";

fn run_hooks(ctx: &mut Ctx, hooks: &[ExecHook], path: &str) -> Result<(), Failure> {
    for hook in hooks {
        ctx.print(&format!(
            "Running post write hook {} ...",
            py_repr(&hook.name)
        ));
        let options = if hook.options.contains(REVISION_SCRIPT_TOKEN) {
            hook.options.clone()
        } else {
            format!("{REVISION_SCRIPT_TOKEN} {}", hook.options)
        };
        let argv: Vec<String> = shlex_split(&options)?
            .into_iter()
            .map(|a| a.replace(REVISION_SCRIPT_TOKEN, path))
            .collect();
        let mut cmd = std::process::Command::new(&hook.executable);
        cmd.args(&argv);
        if let Some(cwd) = &hook.cwd {
            cmd.current_dir(PathBuf::from(cwd));
        }
        // Alembic's subprocess.run ignores the exit status.
        let r = cmd.status();
        match r {
            Ok(_) => ctx.print_raw("  done\n"),
            Err(e) => {
                ctx.print_raw("  FAILED\n");
                return Err(os_error(&e, &hook.executable));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_alembic() {
        assert_eq!(slug(Some("second: thing!"), 40), "second_thing");
        assert_eq!(slug(None, 40), "");
        assert_eq!(
            slug(Some("Add Ünïcode  columns"), 40),
            "add_ünïcode_columns"
        );
        let long = "this is a rather long message that needs truncating at a word";
        // Python: slug[:40].rsplit("_", 1)[0] + "_"
        assert_eq!(slug(Some(long), 40), "this_is_a_rather_long_message_that_");
        assert_eq!(slug(Some("abcdefghij"), 5), "abcde_");
        assert_eq!(slug(Some("ab cd ef"), -2), "ab_cd_");
    }

    #[test]
    fn file_names_from_templates() {
        let date = CreateDate {
            value: DateTimeValue {
                naive: chrono::NaiveDate::from_ymd_opt(2024, 3, 5)
                    .and_then(|d| d.and_hms_opt(7, 8, 9))
                    .unwrap_or_default(),
                offset: None,
            },
            epoch: 1_709_622_489,
        };
        let name = |t: &str| rev_file_name(t, 40, "abc", Some("Do it"), &date).unwrap();
        assert_eq!(name("%(rev)s_%(slug)s"), "abc_do_it.py");
        assert_eq!(
            name("%(year)d_%(month).2d_%(day).2d_%(hour).2d%(minute).2d%(second).2d_%(rev)s"),
            "2024_03_05_070809_abc.py"
        );
        assert_eq!(
            name("%(epoch)s-%(month)02d-%(day)3d"),
            "1709622489-03-  5.py"
        );
        assert!(rev_file_name("%(nokey)s", 40, "abc", None, &date).is_err());
    }

    #[test]
    fn walk_up_relative_paths() {
        assert_eq!(relative_walk_up("/a/b/mig", "/a/b"), "mig");
        assert_eq!(relative_walk_up("/a/mig", "/a/b"), "../mig");
        assert_eq!(relative_walk_up("/a/b", "/a/b"), ".");
    }

    #[test]
    fn shlex_like_python() {
        assert_eq!(
            shlex_split(r#"-l 79 "a b" 'c d' e\ f"#).unwrap(),
            vec!["-l", "79", "a b", "c d", "e f"]
        );
    }
}

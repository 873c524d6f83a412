//! The settings `ScriptDirectory.from_config` (Alembic 1.20.1, script/base.py) derives from a
//! [`Config`], resolved in the same order so the first error is the one Alembic reports:
//! script_location, truncate_slug_length, prepend_sys_path, recursive_version_locations,
//! the script directory itself, file_template, sourceless, output_encoding,
//! version_locations, timezone, post-write hooks. `revision_environment` is not part of it:
//! Alembic reads it only in the commands that need it, so its error must surface there
//! ([`Config::revision_environment`]).
//!
//! Owns option semantics (defaults, separators, legacy splitting, deprecation warnings).
//! Does not own reading the version files.

use std::path::{Path, PathBuf};

use super::alembic::{AlembicValue, Config};
use super::error::ConfigError;
use super::pyutil::{path_absolute, pure_path, py_int, py_repr, py_strip};

/// Alembic's `_default_file_template` (the resolved form of the ini's `%%(rev)s_%%(slug)s`).
pub const DEFAULT_FILE_TEMPLATE: &str = "%(rev)s_%(slug)s";
/// ScriptDirectory's default (also applied when the option is `0`).
pub const DEFAULT_TRUNCATE_SLUG_LENGTH: i64 = 40;

/// Everything the script directory needs, as Alembic resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSettings {
    /// `script_location` as configured (after interpolation / `%(here)s`).
    pub script_location: String,
    /// `coerce_resource_to_filename(script_location)` rendered as pathlib does: a plain path is
    /// normalised but stays relative (Alembic resolves it against the CWD on use); a
    /// `package:path` location is the package's directory joined with the path.
    pub script_dir: PathBuf,
    /// `version_locations` as configured (split), or `None` for the default.
    pub version_locations: Option<Vec<String>>,
    /// `file_template`, default `%(rev)s_%(slug)s`.
    pub file_template: String,
    /// `truncate_slug_length`, default 40; `0` also means 40 (Alembic's `or 40`); negative
    /// values pass through as Alembic lets them.
    pub truncate_slug_length: i64,
    /// `timezone` (not validated here: Alembic checks it when it needs a date).
    pub timezone: Option<String>,
    /// `recursive_version_locations` (ini: exactly `true`; toml: a boolean).
    pub recursive_version_locations: bool,
    /// `sourceless` (same rule).
    pub sourceless: bool,
    /// `output_encoding`, default `utf-8`.
    pub output_encoding: String,
    /// `prepend_sys_path` split like version_locations (legacy split also on `:`).
    pub prepend_sys_path: Option<Vec<String>>,
    /// Post-write hooks: each hook's options, with `_hook_name` first.
    pub hooks: Vec<Vec<(String, String)>>,
    /// The DeprecationWarnings Alembic would emit (the CLI hides them by default).
    pub warnings: Vec<String>,
}

/// `_get_file_separator_char(*names)`: the first of `names` present in the main section
/// decides; `space`, `newline`, `os` (`:` on POSIX), `:` and `;` are the only choices.
fn separator(
    cfg: &Config,
    names: &[&str],
    warnings: &mut Vec<String>,
) -> Result<Option<char>, ConfigError> {
    for name in names {
        let Some(value) = cfg.get_main_option(name)? else {
            continue;
        };
        let sep = match value.as_str() {
            "space" => ' ',
            "newline" => '\n',
            "os" | ":" => ':',
            ";" => ';',
            _ => {
                return Err(ConfigError::InvalidPathSeparator {
                    name: (*name).to_string(),
                    value,
                })
            }
        };
        if *name == "version_path_separator" {
            warnings.push(
                "The version_path_separator configuration parameter is deprecated; please use path_separator"
                    .to_string(),
            );
        }
        return Ok(Some(sep));
    }
    Ok(None)
}

/// `re.split(r", *|(?: +)", s)` (and with `|\:` when `colon`): empty pieces are kept.
fn legacy_split(s: &str, colon: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ',' => {
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            ' ' => {
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            ':' if colon => {}
            _ => {
                cur.push(c);
                continue;
            }
        }
        out.push(std::mem::take(&mut cur));
    }
    out.push(cur);
    out
}

/// `[x.strip() for x in s.split(sep) if x]`: the emptiness test comes before the strip, so a
/// whitespace-only piece survives as "".
fn split_strip(s: &str, sep: char) -> Vec<String> {
    s.split(sep)
        .filter(|x| !x.is_empty())
        .map(|x| py_strip(x).to_string())
        .collect()
}

fn toml_list(v: Option<AlembicValue>, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
    match v {
        None => Ok(None),
        Some(AlembicValue::List(l)) => Ok(Some(l)),
        // Python would iterate a string character by character here; refuse instead.
        Some(_) => Err(ConfigError::TomlType {
            key: key.to_string(),
            expected: "a list of strings",
        }),
    }
}

/// Shared by version_locations and prepend_sys_path: the ini value (if non-empty) split by the
/// configured separator or the legacy rule, else the TOML list.
fn path_list(
    cfg: &Config,
    key: &str,
    separators: &[&str],
    legacy_colon: bool,
    legacy_warning: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<String>>, ConfigError> {
    // file_config.get(section, key, fallback=None): a missing section is just None here.
    let ini_value = match cfg.file_config().get(&cfg.ini_section, key) {
        Err(ConfigError::NoSection(_)) => None,
        other => other?,
    };
    match ini_value.filter(|v| !v.is_empty()) {
        Some(v) => match separator(cfg, separators, warnings)? {
            Some(sep) => Ok(Some(split_strip(&v, sep))),
            None => {
                warnings.push(legacy_warning.to_string());
                Ok(Some(legacy_split(&v, legacy_colon)))
            }
        },
        None => toml_list(cfg.get_toml_value(key)?, key),
    }
}

/// `coerce_resource_to_filename`: a relative name containing `:` is `package:path`. Alembic
/// imports the package; we can only find it as a directory under one of `search_roots`
/// (prepend_sys_path entries, which Alembic puts on sys.path first).
fn coerce_resource(
    location: &str,
    search_roots: &[String],
    cwd: &str,
) -> Result<PathBuf, ConfigError> {
    if location.starts_with('/') || !location.contains(':') {
        return Ok(PathBuf::from(pure_path(location)));
    }
    let mut tokens = location.split(':');
    let package = tokens.next().unwrap_or_default();
    let rel_pkg = package.replace('.', "/");
    for root in search_roots {
        let base = path_absolute(root, cwd);
        let pkg_dir = PathBuf::from(pure_path(&format!("{base}/{rel_pkg}")));
        if !package.is_empty() && pkg_dir.is_dir() {
            let mut out = pkg_dir;
            for tok in tokens {
                out.push(tok);
            }
            return Ok(PathBuf::from(pure_path(&out.to_string_lossy())));
        }
    }
    Err(ConfigError::NoModule(package.to_string()))
}

fn hooks(cfg: &Config) -> Result<Vec<Vec<(String, String)>>, ConfigError> {
    let mut out = Vec::new();
    match cfg.get_section("post_write_hooks")? {
        None => {
            let hooks = match cfg.get_toml_value("post_write_hooks")? {
                None => Vec::new(),
                Some(AlembicValue::DictList(l)) => l,
                Some(AlembicValue::List(l)) if l.is_empty() => Vec::new(),
                Some(_) => {
                    return Err(ConfigError::TomlType {
                        key: "post_write_hooks".into(),
                        expected: "a list of tables",
                    })
                }
            };
            for mut opts in hooks {
                let pos = opts.iter().position(|(k, _)| k == "name");
                // Python: opts.pop("name") -> KeyError 'name'.
                let Some(pos) = pos else {
                    return Err(ConfigError::TomlFormat {
                        key: "post_write_hooks".into(),
                        message: py_repr("name"),
                    });
                };
                let (_, name) = opts.remove(pos);
                opts.push(("_hook_name".into(), name));
                out.push(opts);
            }
        }
        Some(section) => {
            let names = section
                .iter()
                .find(|(k, _)| k == "hooks")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            for name in legacy_split(&names, false) {
                if name.is_empty() {
                    continue;
                }
                let prefix = format!("{name}.");
                let mut opts: Vec<(String, String)> = section
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix(&prefix).map(|s| (s.to_string(), v.clone()))
                    })
                    .collect();
                opts.push(("_hook_name".into(), name));
                out.push(opts);
            }
        }
    }
    Ok(out)
}

impl Config {
    /// `util.asbool(config.get_alembic_option("revision_environment"))`, as the revision,
    /// merge and check commands read it: strings go through asbool (error on other words),
    /// TOML values through Python truthiness; absent is false.
    pub fn revision_environment(&self) -> Result<bool, ConfigError> {
        Ok(match self.get_alembic_option("revision_environment")? {
            None => false,
            Some(AlembicValue::Str(s)) => super::asbool(&s)?,
            Some(AlembicValue::Bool(b)) => b,
            Some(AlembicValue::Int(n)) => n != 0,
            Some(AlembicValue::List(l)) => !l.is_empty(),
            Some(AlembicValue::Dict(d)) => !d.is_empty(),
            Some(AlembicValue::DictList(d)) => !d.is_empty(),
        })
    }
}

impl ScriptSettings {
    /// `ScriptDirectory.from_config(config)` minus the existence check (see
    /// [`Self::check_script_dir`], which Alembic performs right after).
    pub fn from_config(cfg: &Config) -> Result<Self, ConfigError> {
        let mut warnings = Vec::new();
        let script_location = cfg
            .get_alembic_str("script_location")?
            .ok_or(ConfigError::NoScriptLocation)?;

        let truncate_slug_length = match cfg.get_alembic_option("truncate_slug_length")? {
            None => DEFAULT_TRUNCATE_SLUG_LENGTH,
            Some(AlembicValue::Str(s)) => py_int(&s).ok_or(ConfigError::InvalidInt { value: s })?,
            Some(AlembicValue::Int(n)) => n,
            Some(AlembicValue::Bool(b)) => i64::from(b),
            Some(_) => {
                return Err(ConfigError::TomlType {
                    key: "truncate_slug_length".into(),
                    expected: "an integer",
                })
            }
        };
        let truncate_slug_length = if truncate_slug_length == 0 {
            DEFAULT_TRUNCATE_SLUG_LENGTH
        } else {
            truncate_slug_length
        };

        let prepend_sys_path = path_list(
            cfg,
            "prepend_sys_path",
            &["path_separator"],
            true,
            "No path_separator found in configuration; falling back to legacy splitting on spaces, commas, and colons for prepend_sys_path.  Consider adding path_separator=os to Alembic config.",
            &mut warnings,
        )?;
        let recursive_version_locations =
            cfg.get_alembic_boolean_option("recursive_version_locations")?;
        let cwd = cfg.cwd.to_string_lossy().into_owned();
        let script_dir = coerce_resource(
            &script_location,
            prepend_sys_path.as_deref().unwrap_or_default(),
            &cwd,
        )?;
        let file_template = cfg
            .get_alembic_str("file_template")?
            .unwrap_or_else(|| DEFAULT_FILE_TEMPLATE.to_string());
        let sourceless = cfg.get_alembic_boolean_option("sourceless")?;
        let output_encoding = cfg
            .get_alembic_str("output_encoding")?
            .unwrap_or_else(|| "utf-8".to_string());
        let version_locations = path_list(
            cfg,
            "version_locations",
            &["path_separator", "version_path_separator"],
            false,
            "No path_separator found in configuration; falling back to legacy splitting on spaces/commas for version_locations.  Consider adding path_separator=os to Alembic config.",
            &mut warnings,
        )?;
        let timezone = cfg.get_alembic_str("timezone")?;
        let hooks = hooks(cfg)?;

        Ok(Self {
            script_location,
            script_dir,
            version_locations,
            file_template,
            truncate_slug_length,
            timezone,
            recursive_version_locations,
            sourceless,
            output_encoding,
            prepend_sys_path,
            hooks,
            warnings,
        })
    }

    /// The `ScriptDirectory.__init__` check: the directory must exist (relative to `cwd`).
    pub fn check_script_dir(&self, cwd: &Path) -> Result<(), ConfigError> {
        if cwd.join(&self.script_dir).exists() {
            Ok(())
        } else {
            Err(ConfigError::ScriptPathMissing(
                self.script_dir.to_string_lossy().into_owned(),
            ))
        }
    }

    /// The script directory as an absolute path (`Path(dir).absolute()`).
    pub fn script_dir_absolute(&self, cwd: &Path) -> PathBuf {
        PathBuf::from(path_absolute(
            &self.script_dir.to_string_lossy(),
            &cwd.to_string_lossy(),
        ))
    }

    /// `ScriptDirectory._version_locations`: each configured location coerced and made
    /// absolute, or `<script_dir>/versions` when none (or an empty list) is configured.
    pub fn version_dirs(&self, cwd: &Path) -> Result<Vec<PathBuf>, ConfigError> {
        let cwd_s = cwd.to_string_lossy();
        match self.version_locations.as_deref() {
            Some(locs) if !locs.is_empty() => {
                let roots = self.prepend_sys_path.as_deref().unwrap_or_default();
                locs.iter()
                    .map(|l| {
                        let p = coerce_resource(l, roots, &cwd_s)?;
                        Ok(PathBuf::from(path_absolute(&p.to_string_lossy(), &cwd_s)))
                    })
                    .collect()
            }
            _ => Ok(vec![PathBuf::from(path_absolute(
                &format!("{}/versions", self.script_dir.to_string_lossy()),
                &cwd_s,
            ))]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alembic_compat::config::alembic::ConfigOptions;

    fn load(ini: &str, toml: Option<&str>) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alembic.ini"), ini).unwrap();
        if let Some(t) = toml {
            std::fs::write(dir.path().join("pyproject.toml"), t).unwrap();
        }
        let cfg = Config::load(ConfigOptions {
            file: Some("alembic.ini".into()),
            toml_file: Some("pyproject.toml".into()),
            ini_section: "alembic".into(),
            x_arguments: vec![],
            config_args: vec![],
            cwd: dir.path().to_path_buf(),
        })
        .unwrap();
        (dir, cfg)
    }

    fn settings(ini: &str) -> Result<ScriptSettings, String> {
        let (_d, cfg) = load(ini, None);
        ScriptSettings::from_config(&cfg).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let s = settings("[alembic]\nscript_location = ./mig//x/\n").unwrap();
        assert_eq!(s.script_dir, PathBuf::from("mig/x"));
        assert_eq!(s.file_template, DEFAULT_FILE_TEMPLATE);
        assert_eq!(s.truncate_slug_length, 40);
        assert_eq!(s.output_encoding, "utf-8");
        assert_eq!(s.version_locations, None);
        assert_eq!(s.timezone, None);
        assert!(!s.sourceless && !s.recursive_version_locations);
        assert!(s.hooks.is_empty() && s.warnings.is_empty());
        assert_eq!(
            s.version_dirs(Path::new("/w")).unwrap(),
            vec![PathBuf::from("/w/mig/x/versions")]
        );
    }

    #[test]
    fn missing_script_location() {
        assert_eq!(
            settings("[alembic]\n").unwrap_err(),
            "No 'script_location' key found in configuration."
        );
        assert_eq!(
            settings("[other]\n").unwrap_err(),
            "No 'script_location' key found in configuration."
        );
    }

    #[test]
    fn escaped_file_template_and_slug_length() {
        let s = settings(
            "[alembic]\nscript_location=m\nfile_template = %%(year)d_%%(rev)s\ntruncate_slug_length = 0\n",
        )
        .unwrap();
        assert_eq!(s.file_template, "%(year)d_%(rev)s");
        assert_eq!(s.truncate_slug_length, 40);
        assert_eq!(
            settings("[alembic]\nscript_location=m\ntruncate_slug_length = 4o\n").unwrap_err(),
            "invalid literal for int() with base 10: '4o'"
        );
        assert_eq!(
            settings("[alembic]\nscript_location=m\ntruncate_slug_length = 1_0\n")
                .unwrap()
                .truncate_slug_length,
            10
        );
    }

    #[test]
    fn separators() {
        let v = |ini: &str| settings(ini).map(|s| (s.version_locations, s.warnings));
        let (locs, w) =
            v("[alembic]\nscript_location=m\npath_separator=os\nversion_locations = a:b: c : :\n")
                .unwrap();
        assert_eq!(
            locs,
            Some(vec!["a".into(), "b".into(), "c".into(), "".into()])
        );
        assert!(w.is_empty());
        let (locs, _) = v("[alembic]\nscript_location=m\npath_separator=newline\nversion_locations =\n  a b\n  c\n").unwrap();
        assert_eq!(locs, Some(vec!["a b".into(), "c".into()]));
        let (locs, _) =
            v("[alembic]\nscript_location=m\npath_separator=;\nversion_locations = a;b\n").unwrap();
        assert_eq!(locs, Some(vec!["a".into(), "b".into()]));
        let (locs, w) = v("[alembic]\nscript_location=m\nversion_path_separator=space\nversion_locations = a  b\n").unwrap();
        assert_eq!(locs, Some(vec!["a".into(), "b".into()]));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("version_path_separator configuration parameter is deprecated"));
        assert_eq!(
            v("[alembic]\nscript_location=m\npath_separator=comma\nversion_locations = a\n").unwrap_err(),
            "'comma' is not a valid value for path_separator; expected 'space', 'newline', 'os', ':', ';'"
        );
        // an invalid separator is only noticed when there is something to split
        assert!(v("[alembic]\nscript_location=m\npath_separator=comma\n").is_ok());
    }

    #[test]
    fn legacy_splitting() {
        assert_eq!(
            legacy_split("a, b  c ,d", false),
            vec!["a", "b", "c", "", "d"]
        );
        assert_eq!(legacy_split(" a", false), vec!["", "a"]);
        assert_eq!(legacy_split("a:b c", true), vec!["a", "b", "c"]);
        assert_eq!(legacy_split("a:b", false), vec!["a:b"]);
        let s = settings(
            "[alembic]\nscript_location=m\nversion_locations = x, y\nprepend_sys_path = .\n",
        )
        .unwrap();
        assert_eq!(s.version_locations, Some(vec!["x".into(), "y".into()]));
        assert_eq!(s.prepend_sys_path, Some(vec![".".into()]));
        assert_eq!(s.warnings.len(), 2);
    }

    #[test]
    fn booleans_and_revision_environment() {
        let (_d, cfg) = load("[alembic]\nscript_location=m\nsourceless=true\nrecursive_version_locations=yes\nrevision_environment = Yes\n", None);
        let s = ScriptSettings::from_config(&cfg).unwrap();
        assert!(s.sourceless);
        assert!(!s.recursive_version_locations);
        assert_eq!(cfg.revision_environment(), Ok(true));
        let (_d, cfg) = load(
            "[alembic]\nscript_location=m\nrevision_environment = maybe\n",
            None,
        );
        // not a from_config error: only the commands that read it fail
        assert!(ScriptSettings::from_config(&cfg).is_ok());
        assert_eq!(
            cfg.revision_environment().unwrap_err().to_string(),
            "String is not true/false: 'maybe'"
        );
    }

    #[test]
    fn toml_settings() {
        let (dir, cfg) = load(
            "[alembic]\nsqlalchemy.url = sqlite://\n",
            Some("[tool.alembic]\nscript_location = '%(here)s/mig'\nversion_locations = ['%(here)s/v1', 'v2']\ntruncate_slug_length = 12\nsourceless = true\nrevision_environment = true\n[[tool.alembic.post_write_hooks]]\nname = 'ruff'\ntype = 'exec'\n"),
        );
        let s = ScriptSettings::from_config(&cfg).unwrap();
        let here = dir.path().to_string_lossy().into_owned();
        assert_eq!(s.script_location, format!("{here}/mig"));
        assert_eq!(
            s.version_locations,
            Some(vec![format!("{here}/v1"), "v2".into()])
        );
        assert_eq!(s.truncate_slug_length, 12);
        assert!(s.sourceless);
        assert_eq!(cfg.revision_environment(), Ok(true));
        assert_eq!(
            s.hooks,
            vec![vec![
                ("type".into(), "exec".into()),
                ("_hook_name".into(), "ruff".into())
            ]]
        );
        assert_eq!(
            s.version_dirs(Path::new("/w")).unwrap(),
            vec![PathBuf::from(format!("{here}/v1")), PathBuf::from("/w/v2")]
        );
    }

    #[test]
    fn ini_hooks() {
        let s = settings("[alembic]\nscript_location=m\n[post_write_hooks]\nhooks = black, ruff\nblack.type = console_scripts\nblack.entrypoint = black\nruff.type = exec\n").unwrap();
        assert_eq!(s.hooks.len(), 2);
        assert_eq!(s.hooks[0][0], ("type".into(), "console_scripts".into()));
        assert_eq!(s.hooks[1].last().unwrap().1, "ruff");
    }

    #[test]
    fn package_resource_location() {
        let (dir, cfg) = load("[alembic]\nscript_location = myapp.db:migrations\nprepend_sys_path = .\npath_separator = os\n", None);
        std::fs::create_dir_all(dir.path().join("myapp/db/migrations")).unwrap();
        let s = ScriptSettings::from_config(&cfg).unwrap();
        assert_eq!(s.script_dir, dir.path().join("myapp/db/migrations"));
        assert!(s.check_script_dir(dir.path()).is_ok());
        let (_d2, cfg) = load("[alembic]\nscript_location = nopkg:m\n", None);
        assert_eq!(
            ScriptSettings::from_config(&cfg).unwrap_err().to_string(),
            "No module named 'nopkg'"
        );
    }

    #[test]
    fn script_dir_must_exist() {
        let (dir, cfg) = load("[alembic]\nscript_location = ./nowhere/\n", None);
        let s = ScriptSettings::from_config(&cfg).unwrap();
        assert_eq!(
            s.check_script_dir(dir.path()).unwrap_err().to_string(),
            "Path doesn't exist: nowhere.  Please use the 'init' command to create a new scripts folder."
        );
    }
}

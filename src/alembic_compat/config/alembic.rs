//! Alembic 1.20.1's `alembic.config.Config` plus the CLI's choice of files
//! (`CommandLine._inis_from_config`): which alembic.ini / pyproject.toml, the `%(here)s`
//! default, the main section (`-n`), `-x` arguments, and the option getters with Alembic's
//! precedence (ini section first, then `[tool.alembic]`).
//!
//! Owns option lookup and its errors. Does not own the meaning of script-directory options
//! ([`super::script`]) or URLs ([`super::url`]).

use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::ini::IniParser;
use super::pyutil::{basename, path_absolute, path_parent, pure_path, py_repr};
pub use super::toml_source::AlembicValue;
use super::toml_source::{convert, TomlState};

/// `CommandLine._inis_from_config`: from the `-c/--config` values (in order) and
/// `$ALEMBIC_CONFIG`, returns `(pyproject_toml, alembic_ini)`. A name whose basename is
/// `pyproject.toml` is the toml file, anything else the ini; each may be given once.
pub fn ini_and_toml_paths(
    configs: &[String],
    env_alembic_config: Option<&str>,
) -> Result<(String, String), ConfigError> {
    // An empty $ALEMBIC_CONFIG is falsy in Python, i.e. unset.
    let env = env_alembic_config.filter(|e| !e.is_empty());
    let (default_toml, default_ini) = match env {
        Some(e) if basename(e) == "pyproject.toml" => (e.to_string(), "alembic.ini".to_string()),
        Some(e) => ("pyproject.toml".to_string(), e.to_string()),
        None => ("pyproject.toml".to_string(), "alembic.ini".to_string()),
    };
    let mut toml: Option<&str> = None;
    let mut ini: Option<&str> = None;
    for name in configs {
        if basename(name) == "pyproject.toml" {
            if toml.is_some() {
                return Err(ConfigError::Command(
                    "pyproject.toml indicated more than once".into(),
                ));
            }
            toml = Some(name);
        } else {
            if ini.is_some() {
                return Err(ConfigError::Command(
                    "only one ini file may be indicated".into(),
                ));
            }
            ini = Some(name);
        }
    }
    // `-c ""` counts as given (so a second `-c` is an error) but then falls back to the
    // default, because Python tests the name's truthiness.
    let pick = |given: Option<&str>, default: String| match given {
        Some(g) if !g.is_empty() => g.to_string(),
        _ => default,
    };
    Ok((pick(toml, default_toml), pick(ini, default_ini)))
}

/// How to build a [`Config`]: the equivalent of `Config(file_, toml_file, ini_section,
/// cmd_opts, config_args)` plus the working directory relative paths resolve against (Python
/// uses the process CWD; taking it explicitly keeps tests free of `chdir`).
#[derive(Debug, Clone)]
pub struct ConfigOptions {
    /// The ini file (`None` or empty: no file, an empty in-memory main section is used).
    pub file: Option<String>,
    /// The pyproject.toml file (`None`: no toml).
    pub toml_file: Option<String>,
    /// `-n/--name`; "alembic" by default.
    pub ini_section: String,
    /// `-x` values in command-line order.
    pub x_arguments: Vec<String>,
    /// `config_args`: extra `%(name)s` substitutions for both files (the CLI passes none).
    pub config_args: Vec<(String, String)>,
    /// The directory relative paths are resolved against.
    pub cwd: PathBuf,
}

impl ConfigOptions {
    /// What the `alembic` CLI does for `-c ... -n NAME -x ...` with `$ALEMBIC_CONFIG`.
    pub fn from_cli(
        configs: &[String],
        name: Option<&str>,
        x_arguments: Vec<String>,
        env_alembic_config: Option<&str>,
        cwd: PathBuf,
    ) -> Result<Self, ConfigError> {
        let (toml, ini) = ini_and_toml_paths(configs, env_alembic_config)?;
        Ok(Self {
            file: Some(ini),
            toml_file: Some(toml),
            ini_section: name.unwrap_or("alembic").to_string(),
            x_arguments,
            config_args: Vec::new(),
            cwd,
        })
    }
}

/// A loaded Alembic configuration (`alembic.config.Config`).
#[derive(Debug, Clone)]
pub struct Config {
    /// `config_file_name`: the ini path exactly as given (`None` without a file).
    pub config_file_name: Option<String>,
    /// `toml_file_name`: the pyproject.toml path as given.
    pub toml_file_name: Option<String>,
    /// `config_ini_section` (`-n/--name`).
    pub ini_section: String,
    /// The directory relative paths resolve against.
    pub cwd: PathBuf,
    x_arguments: Vec<String>,
    ini: IniParser,
    toml: TomlState,
    toml_args: Vec<(String, String)>,
}

fn cwd_str(cwd: &Path) -> String {
    cwd.to_string_lossy().into_owned()
}

/// Python's `set_or_replace` on a small ordered dict.
fn put(args: &mut Vec<(String, String)>, key: &str, value: String) {
    match args.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => args.push((key.to_string(), value)),
    }
}

impl Config {
    /// Builds the config and reads the ini file now (Python reads it on first use, which in
    /// every command is immediately). A missing or unreadable ini file is *not* an error, as
    /// `ConfigParser.read` silently skips it; the main-section getters report it later.
    pub fn load(opts: ConfigOptions) -> Result<Self, ConfigError> {
        let cwd = cwd_str(&opts.cwd);
        let file = opts.file.filter(|f| !f.is_empty());
        let toml_file = opts.toml_file.filter(|f| !f.is_empty());

        // config_args["here"] = Path(file).absolute().parent.as_posix(), or "." without file.
        let mut ini_args = opts.config_args.clone();
        let here = match &file {
            Some(f) => path_parent(&path_absolute(f, &cwd)),
            None => ".".to_string(),
        };
        put(&mut ini_args, "here", here);
        let mut ini = IniParser::new(&ini_args);
        match &file {
            Some(f) => {
                let full = opts.cwd.join(f);
                // read() ignores any OSError (missing, unreadable, a directory).
                if let Ok(bytes) = std::fs::read(&full) {
                    let text = String::from_utf8(bytes).map_err(|e| ConfigError::NotUtf8 {
                        path: f.clone(),
                        offset: e.utf8_error().valid_up_to(),
                    })?;
                    // Alembic hands ConfigParser a pathlib.Path, so messages name
                    // `PosixPath('<normalised path>')`.
                    let source = format!("PosixPath({})", py_repr(&pure_path(f)));
                    ini.read_str(&text, &source)?;
                }
            }
            None => ini.add_section(&opts.ini_section)?,
        }

        let mut toml_args = opts.config_args;
        let toml = match &toml_file {
            Some(t) => {
                let state = TomlState::load(&opts.cwd.join(t), t);
                if !matches!(state, TomlState::Absent) {
                    put(&mut toml_args, "here", path_parent(&path_absolute(t, &cwd)));
                }
                state
            }
            None => TomlState::Absent,
        };

        Ok(Self {
            config_file_name: file,
            toml_file_name: toml_file,
            ini_section: opts.ini_section,
            cwd: opts.cwd,
            x_arguments: opts.x_arguments,
            ini,
            toml,
            toml_args,
        })
    }

    /// The underlying parser (`Config.file_config`).
    pub fn file_config(&self) -> &IniParser {
        &self.ini
    }

    /// `get_section(name)`: every option of the section *including DEFAULT's* (so `here`),
    /// interpolated; `None` if the section does not exist.
    pub fn get_section(&self, name: &str) -> Result<Option<Vec<(String, String)>>, ConfigError> {
        if !self.ini.has_section(name) {
            return Ok(None);
        }
        self.ini.items(name).map(Some)
    }

    /// `get_section_option(section, name)`: the section must exist (else Alembic's
    /// "No config file ... found, or file has no '[section]' section"); `None` if the option
    /// is absent.
    pub fn get_section_option(
        &self,
        section: &str,
        name: &str,
    ) -> Result<Option<String>, ConfigError> {
        if !self.ini.has_section(section) {
            return Err(ConfigError::NoConfigSection {
                file: self.config_file_name.clone(),
                section: section.to_string(),
            });
        }
        self.ini.get(section, name)
    }

    /// `get_main_option(name)`: [`Self::get_section_option`] on the `-n` section. Does not
    /// look at pyproject.toml.
    pub fn get_main_option(&self, name: &str) -> Result<Option<String>, ConfigError> {
        self.get_section_option(&self.ini_section, name)
    }

    /// `set_section_option`: creates the section if needed; the value is validated by
    /// BasicInterpolation and interpolated on read.
    pub fn set_section_option(
        &mut self,
        section: &str,
        name: &str,
        value: &str,
    ) -> Result<(), ConfigError> {
        if !self.ini.has_section(section) {
            self.ini.add_section(section)?;
        }
        self.ini.set(section, name, value)
    }

    /// `set_main_option`.
    pub fn set_main_option(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let section = self.ini_section.clone();
        self.set_section_option(&section, name, value)
    }

    /// `Config.toml_alembic_config` (empty when there is no pyproject.toml).
    pub fn toml_alembic_config(&self) -> Result<Option<&toml::Table>, ConfigError> {
        self.toml.table()
    }

    /// `_get_toml_config_value(name)`: `None` when absent.
    pub(crate) fn get_toml_value(&self, name: &str) -> Result<Option<AlembicValue>, ConfigError> {
        let Some(table) = self.toml.table()? else {
            return Ok(None);
        };
        table
            .get(name)
            .map(|v| convert(v, &self.toml_args, name))
            .transpose()
    }

    /// `get_alembic_option(name)`: the ini main section (DEFAULT included) wins, then
    /// `[tool.alembic]`. `-n` applies to the ini only.
    pub fn get_alembic_option(&self, name: &str) -> Result<Option<AlembicValue>, ConfigError> {
        if self.ini.has_option(&self.ini_section, name) {
            return Ok(self
                .ini
                .get(&self.ini_section, name)?
                .map(AlembicValue::Str));
        }
        self.get_toml_value(name)
    }

    /// [`Self::get_alembic_option`] for options that must be strings (script_location,
    /// file_template, ...). A non-string TOML value is a typed error where Python would crash
    /// later or misbehave.
    pub fn get_alembic_str(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match self.get_alembic_option(name)? {
            None => Ok(None),
            Some(AlembicValue::Str(s)) => Ok(Some(s)),
            Some(_) => Err(ConfigError::TomlType {
                key: name.to_string(),
                expected: "a string",
            }),
        }
    }

    /// `get_alembic_boolean_option(name)`: in the ini only the exact (interpolated) text
    /// `true` is true — not `True`, `yes` or `1`; in TOML the value must be a boolean.
    pub fn get_alembic_boolean_option(&self, name: &str) -> Result<bool, ConfigError> {
        if self.ini.has_option(&self.ini_section, name) {
            return Ok(self.ini.get(&self.ini_section, name)?.as_deref() == Some("true"));
        }
        let Some(table) = self.toml.table()? else {
            return Ok(false);
        };
        match table.get(name) {
            None => Ok(false),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(_) => Err(ConfigError::Command(format!(
                "boolean value expected for TOML parameter {}",
                py_repr(name)
            ))),
        }
    }

    /// `-x` values as given (`get_x_argument(as_dictionary=False)`).
    pub fn x_arguments(&self) -> &[String] {
        &self.x_arguments
    }

    /// `get_x_argument(as_dictionary=True)`: split at the first `=`; no `=` gives an empty
    /// value; a repeated key keeps its first position and takes the last value (dict rules).
    pub fn x_arguments_dict(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for arg in &self.x_arguments {
            let (k, v) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
            put(&mut out, k, v.to_string());
        }
        out
    }

    /// The database URL: our `--url` override wins; otherwise the main section's
    /// `sqlalchemy.url` (which needs the section to exist, as env.py's `get_main_option`).
    pub fn sqlalchemy_url(
        &self,
        url_override: Option<&str>,
    ) -> Result<Option<String>, ConfigError> {
        match url_override {
            Some(u) => Ok(Some(u.to_string())),
            None => self.get_main_option("sqlalchemy.url"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn cli_file_selection() {
        let p = |c: &[&str], env: Option<&str>| ini_and_toml_paths(&s(c), env);
        assert_eq!(
            p(&[], None),
            Ok(("pyproject.toml".into(), "alembic.ini".into()))
        );
        assert_eq!(
            p(&[], Some("")),
            Ok(("pyproject.toml".into(), "alembic.ini".into()))
        );
        assert_eq!(
            p(&[], Some("x/my.ini")),
            Ok(("pyproject.toml".into(), "x/my.ini".into()))
        );
        assert_eq!(
            p(&[], Some("sub/pyproject.toml")),
            Ok(("sub/pyproject.toml".into(), "alembic.ini".into()))
        );
        assert_eq!(
            p(&["a.ini"], Some("env.ini")),
            Ok(("pyproject.toml".into(), "a.ini".into()))
        );
        assert_eq!(
            p(&["d/pyproject.toml"], Some("env.ini")),
            Ok(("d/pyproject.toml".into(), "env.ini".into()))
        );
        assert_eq!(
            p(&["a.ini", "b.ini"], None).unwrap_err().to_string(),
            "only one ini file may be indicated"
        );
        assert_eq!(
            p(&["pyproject.toml", "x/pyproject.toml"], None)
                .unwrap_err()
                .to_string(),
            "pyproject.toml indicated more than once"
        );
        assert_eq!(
            p(&[""], None),
            Ok(("pyproject.toml".into(), "alembic.ini".into()))
        );
    }

    fn load_text(ini: &str, toml: Option<&str>, section: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alembic.ini"), ini).unwrap();
        if let Some(t) = toml {
            std::fs::write(dir.path().join("pyproject.toml"), t).unwrap();
        }
        let cfg = Config::load(ConfigOptions {
            file: Some("alembic.ini".into()),
            toml_file: Some("pyproject.toml".into()),
            ini_section: section.into(),
            x_arguments: s(&["a=1", "flag", "b=x=y", "a=2"]),
            config_args: Vec::new(),
            cwd: dir.path().to_path_buf(),
        })
        .unwrap();
        (dir, cfg)
    }

    #[test]
    fn here_and_main_options() {
        let (dir, cfg) = load_text(
            "[alembic]\nscript_location = %(here)s/mig\n",
            None,
            "alembic",
        );
        let here = dir.path().to_string_lossy().into_owned();
        assert_eq!(
            cfg.get_main_option("script_location").unwrap(),
            Some(format!("{here}/mig"))
        );
        assert_eq!(cfg.get_main_option("nope").unwrap(), None);
        let sect = cfg.get_section("alembic").unwrap().unwrap();
        assert_eq!(sect[0], ("here".to_string(), here));
        assert_eq!(cfg.get_section("zzz").unwrap(), None);
    }

    #[test]
    fn missing_file_or_section_message() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::load(ConfigOptions {
            file: Some("nope.ini".into()),
            toml_file: None,
            ini_section: "alembic".into(),
            x_arguments: vec![],
            config_args: vec![],
            cwd: dir.path().to_path_buf(),
        })
        .unwrap();
        assert_eq!(
            cfg.get_main_option("sqlalchemy.url")
                .unwrap_err()
                .to_string(),
            "No config file 'nope.ini' found, or file has no '[alembic]' section"
        );
        assert_eq!(cfg.get_alembic_option("script_location"), Ok(None));
        assert_eq!(
            cfg.sqlalchemy_url(Some("sqlite://")),
            Ok(Some("sqlite://".into()))
        );
    }

    #[test]
    fn no_file_gives_in_memory_section() {
        let cfg = Config::load(ConfigOptions {
            file: None,
            toml_file: None,
            ini_section: "main".into(),
            x_arguments: vec![],
            config_args: vec![],
            cwd: PathBuf::from("/"),
        })
        .unwrap();
        assert_eq!(cfg.get_main_option("here").unwrap().as_deref(), Some("."));
    }

    #[test]
    fn ini_wins_over_toml_and_toml_has_its_own_here() {
        let (dir, cfg) = load_text(
            "[alembic]\nfile_template = ini\nsourceless = True\n",
            Some("[tool.alembic]\nfile_template = 'toml'\nscript_location = '%(here)s/m'\nrecursive_version_locations = true\ntimezone = 3\n"),
            "alembic",
        );
        let here = dir.path().to_string_lossy().into_owned();
        assert_eq!(
            cfg.get_alembic_str("file_template").unwrap().as_deref(),
            Some("ini")
        );
        assert_eq!(
            cfg.get_alembic_str("script_location").unwrap(),
            Some(format!("{here}/m"))
        );
        // "True" is not "true" for get_alembic_boolean_option
        assert_eq!(cfg.get_alembic_boolean_option("sourceless"), Ok(false));
        assert_eq!(
            cfg.get_alembic_boolean_option("recursive_version_locations"),
            Ok(true)
        );
        assert_eq!(
            cfg.get_alembic_option("timezone"),
            Ok(Some(AlembicValue::Int(3)))
        );
        assert_eq!(
            cfg.get_alembic_boolean_option("timezone")
                .unwrap_err()
                .to_string(),
            "boolean value expected for TOML parameter 'timezone'"
        );
    }

    #[test]
    fn name_selects_ini_section_only() {
        let (_d, cfg) = load_text("[alembic]\na = 1\n[other]\na = 2\n", None, "other");
        assert_eq!(cfg.get_main_option("a").unwrap().as_deref(), Some("2"));
        assert_eq!(
            cfg.get_section_option("alembic", "a").unwrap().as_deref(),
            Some("1")
        );
    }

    #[test]
    fn bad_toml_only_fails_when_consulted() {
        let (_d, cfg) = load_text(
            "[alembic]\nscript_location = x\n",
            Some("[tool.alembic\n"),
            "alembic",
        );
        assert_eq!(
            cfg.get_alembic_str("script_location").unwrap().as_deref(),
            Some("x")
        );
        assert!(matches!(
            cfg.get_alembic_option("timezone"),
            Err(ConfigError::TomlSyntax { .. })
        ));
        let (_d, cfg) = load_text("[alembic]\n", Some("[tool]\nalembic = 1\n"), "alembic");
        assert_eq!(
            cfg.get_alembic_option("x").unwrap_err().to_string(),
            "Incorrect TOML format"
        );
    }

    #[test]
    fn x_arguments() {
        let (_d, cfg) = load_text("[alembic]\n", None, "alembic");
        assert_eq!(
            cfg.x_arguments(),
            s(&["a=1", "flag", "b=x=y", "a=2"]).as_slice()
        );
        assert_eq!(
            cfg.x_arguments_dict(),
            vec![
                ("a".to_string(), "2".to_string()),
                ("flag".to_string(), String::new()),
                ("b".to_string(), "x=y".to_string())
            ]
        );
    }

    #[test]
    fn set_main_option_interpolates_later() {
        let (_d, mut cfg) = load_text("[alembic]\nbase = /b\n", None, "alembic");
        cfg.set_main_option("loc", "%(base)s/x").unwrap();
        assert_eq!(cfg.get_main_option("loc").unwrap().as_deref(), Some("/b/x"));
        assert!(cfg.set_main_option("bad", "100%").is_err());
    }
}

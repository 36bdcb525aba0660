//! Configuration: defaults < `echopilot.toml` (config dir) < `ECHOPILOT_*` env < flags.
//!
//! Every value is kept in one flat map of dotted keys (`queue.concurrency`) with the
//! source it came from, so an invalid value is reported with its key and origin.
//! Areas read their own section keys through the typed getters.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where a config value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "config file {}", p.display()),
            Source::Env(v) => write!(f, "environment variable {v}"),
            Source::Flag => f.write_str("command-line flag"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: key `{key}` (from {source_desc}): {message}")]
pub struct ConfigError {
    pub key: String,
    pub source_desc: String,
    pub message: String,
}

/// Top-level keys the core understands. Sections (tables) listed in [`SECTIONS`] belong
/// to areas, which validate their own keys.
const KEYS: &[&str] = &[
    "addr",
    "data_dir",
    "database_url",
    "db_max_connections",
    "body_limit_bytes",
    "request_timeout_secs",
    "rate_limit_per_sec",
    "rate_limit_burst",
    "log_level",
    "replica_id",
    "bootstrap_key",
];
/// Sections (tables) belong to areas: the list comes from the areas themselves
/// ([`crate::area::config_sections`]), each checks its own keys.
fn sections() -> Vec<&'static str> {
    crate::area::config_sections()
}

#[derive(Debug, Clone)]
struct Entry {
    value: toml::Value,
    source: Source,
}

/// The raw layered key/value map.
#[derive(Debug, Clone, Default)]
pub struct ConfigMap {
    entries: BTreeMap<String, Entry>,
}

impl ConfigMap {
    pub fn set(&mut self, key: &str, value: toml::Value, source: Source) {
        self.entries
            .insert(key.to_string(), Entry { value, source });
    }

    pub fn set_str(&mut self, key: &str, value: &str, source: Source) {
        self.set(key, toml::Value::String(value.to_string()), source);
    }

    fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.to_string(),
            source_desc: self
                .entries
                .get(key)
                .map(|e| e.source.to_string())
                .unwrap_or_else(|| "default".into()),
            message: message.into(),
        }
    }

    /// An error about `key` that names where its value came from (for areas' own checks).
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.err(key, message)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Keys under a section prefix, e.g. `jobs.` → `jobs.backup.schedule`.
    pub fn keys_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .keys()
            .filter(move |k| k.starts_with(prefix))
            .map(|k| k.as_str())
    }

    /// The raw value at `key` (a config export walks every key with this).
    pub fn value(&self, key: &str) -> Option<&toml::Value> {
        self.entries.get(key).map(|e| &e.value)
    }

    pub fn get_string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.entries.get(key) {
            None => Ok(None),
            Some(Entry {
                value: toml::Value::String(s),
                ..
            }) => Ok(Some(s.clone())),
            Some(Entry { value, .. }) => {
                Err(self.err(key, format!("expected a string, got {value}")))
            }
        }
    }

    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.entries.get(key) {
            None => Ok(None),
            Some(Entry {
                value: toml::Value::Integer(i),
                ..
            }) if *i >= 0 => Ok(Some(*i as u64)),
            Some(Entry {
                value: toml::Value::String(s),
                ..
            }) => {
                s.trim().parse::<u64>().map(Some).map_err(|_| {
                    self.err(key, format!("expected a non-negative integer, got {s:?}"))
                })
            }
            Some(Entry { value, .. }) => {
                Err(self.err(key, format!("expected a non-negative integer, got {value}")))
            }
        }
    }

    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.entries.get(key) {
            None => Ok(None),
            Some(Entry {
                value: toml::Value::Boolean(b),
                ..
            }) => Ok(Some(*b)),
            Some(Entry {
                value: toml::Value::String(s),
                ..
            }) => match s.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(Some(true)),
                "0" | "false" | "no" | "off" => Ok(Some(false)),
                _ => Err(self.err(key, format!("expected true or false, got {s:?}"))),
            },
            Some(Entry { value, .. }) => {
                Err(self.err(key, format!("expected true or false, got {value}")))
            }
        }
    }

    /// A range check of a value already read (from a section struct), naming the key.
    pub fn check_range(&self, key: &str, v: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        if v < min || v > max {
            return Err(self.err(key, format!("must be between {min} and {max}, got {v}")));
        }
        Ok(v)
    }

    /// Typed getter with a default and a range check.
    pub fn u64_in(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let v = self.get_u64(key)?.unwrap_or(default);
        if v < min || v > max {
            return Err(self.err(key, format!("must be between {min} and {max}, got {v}")));
        }
        Ok(v)
    }

    /// An area's section as its own serde struct (`#[serde(default, deny_unknown_fields)]`),
    /// so unknown keys are rejected and every error names the key and where it came from.
    /// Environment values arrive as strings: each is read as the type the struct's default
    /// has at that key (an integer field takes `"8"`), else as TOML-ish scalars.
    pub fn section<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: serde::de::DeserializeOwned + serde::Serialize + Default,
    {
        let shape =
            toml::Value::try_from(T::default()).unwrap_or(toml::Value::Table(Default::default()));
        let prefix = format!("{name}.");
        let mut table = toml::Table::new();
        for (key, entry) in self.entries.range(prefix.clone()..) {
            let Some(rest) = key.strip_prefix(&prefix) else {
                break;
            };
            let path: Vec<&str> = rest.split('.').collect();
            let value = match (&entry.source, &entry.value) {
                (Source::Env(_), toml::Value::String(s)) => coerce_env(s, shape_at(&shape, &path)),
                (_, v) => v.clone(),
            };
            insert_path(&mut table, &path, value);
        }
        let de = toml::Value::Table(table);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // At the top level the path is empty; serde names an unknown field in its
            // message then.
            let field = inner
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
                .map(str::to_string);
            let sub = match (path.as_str(), field) {
                ("." | "", Some(f)) => f,
                (p, _) => p.to_string(),
            };
            let key = if sub.is_empty() || sub == "." {
                name.to_string()
            } else {
                format!("{name}.{sub}")
            };
            let message = inner.replace("unknown field", "unknown key");
            let source_desc = self
                .entries
                .get(&key)
                .or_else(|| self.entries.range(prefix.clone()..).next().map(|(_, e)| e))
                .map(|e| e.source.to_string())
                .unwrap_or_else(|| "default".into());
            ConfigError {
                key,
                source_desc,
                message,
            }
        })
    }

    /// Flatten a parsed TOML document into dotted keys.
    fn merge_toml(&mut self, table: &toml::Table, prefix: &str, source: &Source) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => self.merge_toml(t, &key, source),
                other => self.set(&key, other.clone(), source.clone()),
            }
        }
    }
}

/// The type the default config has at `path`, if any.
fn shape_at<'a>(shape: &'a toml::Value, path: &[&str]) -> Option<&'a toml::Value> {
    let mut v = shape;
    for p in path {
        v = v.as_table()?.get(*p)?;
    }
    Some(v)
}

/// An environment string as the value the field expects.
fn coerce_env(s: &str, shape: Option<&toml::Value>) -> toml::Value {
    let t = s.trim();
    let as_bool = || match t.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    };
    match shape {
        Some(toml::Value::String(_)) => toml::Value::String(s.to_string()),
        Some(toml::Value::Integer(_)) => t
            .parse::<i64>()
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(s.to_string())),
        Some(toml::Value::Float(_)) => t
            .parse::<f64>()
            .map(toml::Value::Float)
            .unwrap_or_else(|_| toml::Value::String(s.to_string())),
        Some(toml::Value::Boolean(_)) => as_bool()
            .map(toml::Value::Boolean)
            .unwrap_or_else(|| toml::Value::String(s.to_string())),
        // Unknown shape (an optional or map entry): the obvious scalar reading.
        _ => {
            if let Ok(i) = t.parse::<i64>() {
                toml::Value::Integer(i)
            } else if let Some(b) = as_bool().filter(|_| !t.chars().all(|c| c.is_ascii_digit())) {
                toml::Value::Boolean(b)
            } else {
                toml::Value::String(s.to_string())
            }
        }
    }
}

fn insert_path(table: &mut toml::Table, path: &[&str], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                insert_path(t, rest, value);
            }
        }
    }
}

/// Resolved configuration of one process.
#[derive(Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// `None` → SQLite file `<data_dir>/echopilot.db`.
    pub database_url: Option<String>,
    pub db_max_connections: u32,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    pub log_level: String,
    pub replica_id: String,
    /// Secret: never printed (see the Debug impl).
    pub bootstrap_key: Option<String>,
    /// Write logs to stderr as well as NDJSON files (off when the console owns the terminal).
    pub log_to_stderr: bool,
    /// The full layered map, for areas' own sections.
    pub raw: ConfigMap,
    /// The command-line layer it was loaded with, so [`Config::reload`] re-reads the same
    /// file and flags.
    pub overrides: Overrides,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("replica_id", &self.replica_id)
            .field(
                "bootstrap_key",
                &self.bootstrap_key.as_ref().map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

/// Hide the password in a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Command-line overrides (the highest layer).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub addr: Option<String>,
    pub database_url: Option<String>,
}

pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("echopilot"))
        .unwrap_or_else(|| PathBuf::from(".echopilot"))
}

pub fn default_config_file() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("echopilot").join("echopilot.toml"))
}

impl Config {
    /// Load from the real environment.
    pub fn load(over: &Overrides) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(over, &env)
    }

    /// Load with an explicit environment (tests).
    pub fn load_from(over: &Overrides, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut map = ConfigMap::default();
        let env_get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());

        // File layer: explicit flag, then ECHOPILOT_CONFIG, then the XDG config dir.
        let file = over
            .config_file
            .clone()
            .or_else(|| env_get("ECHOPILOT_CONFIG").map(PathBuf::from))
            .or_else(default_config_file);
        if let Some(path) = file {
            if path.exists() {
                load_file(&mut map, &path)?;
            } else if over.config_file.is_some() || env_get("ECHOPILOT_CONFIG").is_some() {
                return Err(ConfigError {
                    key: "config".into(),
                    source_desc: "command line or ECHOPILOT_CONFIG".into(),
                    message: format!("config file {} does not exist", path.display()),
                });
            }
        }

        // Env layer: ECHOPILOT_FOO → foo, ECHOPILOT_QUEUE__CONCURRENCY → queue.concurrency.
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("ECHOPILOT_") else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            let top = key.split('.').next().unwrap_or_default();
            if KEYS.contains(&key.as_str()) || (key.contains('.') && sections().contains(&top)) {
                map.set_str(&key, value, Source::Env(name.clone()));
            }
            // Other ECHOPILOT_* variables (ECHOPILOT_KEY, ECHOPILOT_TEST_PG_URL, …) belong
            // to clients and tests, not to the server.
        }

        // Flag layer.
        if let Some(d) = &over.data_dir {
            map.set_str("data_dir", &d.to_string_lossy(), Source::Flag);
        }
        if let Some(a) = &over.addr {
            map.set_str("addr", a, Source::Flag);
        }
        if let Some(u) = &over.database_url {
            map.set_str("database_url", u, Source::Flag);
        }

        let mut cfg = Self::from_map(map)?;
        cfg.overrides = over.clone();
        Ok(cfg)
    }

    /// Load again from the same file, environment and flags (the scheduler's restart).
    pub fn reload(&self) -> Result<Config, ConfigError> {
        Self::load(&self.overrides)
    }

    fn from_map(map: ConfigMap) -> Result<Config, ConfigError> {
        let addr_s = map
            .get_string("addr")?
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let addr: SocketAddr = addr_s.parse().map_err(|_| {
            map.err(
                "addr",
                format!("expected host:port like 127.0.0.1:8080, got {addr_s:?}"),
            )
        })?;
        let data_dir = map
            .get_string("data_dir")?
            .map(PathBuf::from)
            .unwrap_or_else(default_data_dir);
        let database_url = map.get_string("database_url")?.filter(|s| !s.is_empty());
        if let Some(u) = &database_url {
            if !(u.starts_with("postgres://")
                || u.starts_with("postgresql://")
                || u.starts_with("sqlite:"))
            {
                return Err(map.err(
                    "database_url",
                    format!(
                        "expected a postgres://… or sqlite:… URL, got {:?}",
                        redact_url(u)
                    ),
                ));
            }
        }
        let log_level = map
            .get_string("log_level")?
            .unwrap_or_else(|| "info".into());
        if !["trace", "debug", "info", "warn", "error"].contains(&log_level.as_str()) {
            return Err(map.err(
                "log_level",
                format!("expected one of trace, debug, info, warn, error, got {log_level:?}"),
            ));
        }
        let replica_id = map.get_string("replica_id")?.unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
            format!("{host}-{}", std::process::id())
        });
        // Every area checks its own section; `[modules]` names only real modules.
        crate::area::check_config(&map)?;
        Ok(Config {
            addr,
            data_dir,
            database_url,
            db_max_connections: map.u64_in("db_max_connections", 10, 2, 500)? as u32,
            body_limit_bytes: map.u64_in("body_limit_bytes", 1024 * 1024, 1024, 1 << 30)? as usize,
            request_timeout_secs: map.u64_in("request_timeout_secs", 30, 1, 3600)?,
            rate_limit_per_sec: map.u64_in("rate_limit_per_sec", 100, 1, 1_000_000)? as u32,
            rate_limit_burst: map.u64_in("rate_limit_burst", 200, 1, 1_000_000)? as u32,
            log_level,
            replica_id,
            bootstrap_key: map.get_string("bootstrap_key")?.filter(|s| !s.is_empty()),
            log_to_stderr: true,
            raw: map,
            overrides: Overrides::default(),
        })
    }

    /// A config for tests and the embedded console: defaults, the given data dir, no file.
    pub fn for_data_dir(data_dir: &Path) -> Config {
        let mut map = ConfigMap::default();
        map.set_str("data_dir", &data_dir.to_string_lossy(), Source::Flag);
        let mut cfg = Self::from_map(map).expect("defaults are valid");
        cfg.overrides.data_dir = Some(data_dir.to_path_buf());
        cfg
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres"))
    }
}

fn load_file(map: &mut ConfigMap, path: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        key: "config".into(),
        source_desc: format!("config file {}", path.display()),
        message: format!("cannot read: {e}"),
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
        key: "config".into(),
        source_desc: format!("config file {}", path.display()),
        message: format!("not valid TOML: {}", e.message()),
    })?;
    for (k, v) in &table {
        let known =
            KEYS.contains(&k.as_str()) || (sections().contains(&k.as_str()) && v.is_table());
        if !known {
            return Err(ConfigError {
                key: k.clone(),
                source_desc: format!("config file {}", path.display()),
                message: format!(
                    "unknown key; known keys: {}; sections: {}",
                    KEYS.join(", "),
                    sections().join(", ")
                ),
            });
        }
    }
    map.merge_toml(&table, "", &Source::File(path.to_path_buf()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("echopilot.toml");
        std::fs::write(
            &file,
            "addr = \"127.0.0.1:9000\"\nrate_limit_per_sec = 5\n[queue]\nconcurrency = 3\n",
        )
        .unwrap();
        let over = Overrides {
            config_file: Some(file.clone()),
            addr: Some("127.0.0.1:9100".into()),
            ..Default::default()
        };
        let cfg = Config::load_from(
            &over,
            &env(&[
                ("ECHOPILOT_RATE_LIMIT_PER_SEC", "7"),
                ("ECHOPILOT_QUEUE__CONCURRENCY", "4"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.addr.port(), 9100, "flag beats file");
        assert_eq!(cfg.rate_limit_per_sec, 7, "env beats file");
        assert_eq!(cfg.raw.get_u64("queue.concurrency").unwrap(), Some(4));
        assert_eq!(cfg.request_timeout_secs, 30, "default kept");
    }

    #[test]
    fn invalid_values_name_the_key_and_source() {
        let err = Config::load_from(
            &Overrides::default(),
            &env(&[("ECHOPILOT_RATE_LIMIT_PER_SEC", "fast")]),
        )
        .unwrap_err();
        assert_eq!(err.key, "rate_limit_per_sec");
        assert!(
            err.to_string().contains("ECHOPILOT_RATE_LIMIT_PER_SEC"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "adress = \"x\"\n").unwrap();
        let err = Config::load_from(
            &Overrides {
                config_file: Some(file),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert_eq!(err.key, "adress");
    }

    #[test]
    fn url_password_is_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        let cfg = Config::load_from(
            &Overrides::default(),
            &env(&[("ECHOPILOT_BOOTSTRAP_KEY", "ep_supersecret")]),
        )
        .unwrap();
        assert!(!format!("{cfg:?}").contains("supersecret"));
    }

    #[test]
    fn area_sections_reject_unknown_keys_and_coerce_env_strings() {
        // Env strings become the type the section's default has at that key.
        let cfg = Config::load_from(
            &Overrides::default(),
            &env(&[
                ("ECHOPILOT_QUEUE__CONCURRENCY", "8"),
                ("ECHOPILOT_ALERTS__TELEGRAM_CHAT_ID", "12345"),
                ("ECHOPILOT_JOBS__RETENTION__ENABLED", "false"),
            ]),
        )
        .unwrap();
        let q = crate::queue::area::QueueSection::load(&cfg.raw).unwrap();
        assert_eq!(q.concurrency, 8);
        let a: crate::alerts::area::AlertsSection = cfg.raw.section("alerts").unwrap();
        assert_eq!(
            a.telegram_chat_id, "12345",
            "a string field keeps digits as text"
        );
        let j: crate::jobs::area::JobsSection = cfg.raw.section("jobs").unwrap();
        assert_eq!(j["retention"].enabled, Some(false));

        // A typo names the full key and where it came from.
        let err = Config::load_from(
            &Overrides::default(),
            &env(&[("ECHOPILOT_QUEUE__CONCURENCY", "8")]),
        )
        .unwrap_err();
        assert_eq!(err.key, "queue.concurency");
        assert!(
            err.to_string().contains("ECHOPILOT_QUEUE__CONCURENCY"),
            "{err}"
        );
        assert!(err.message.contains("unknown key"), "{err}");

        // A wrong type names the key too, also inside a nested table.
        let err = Config::load_from(
            &Overrides::default(),
            &env(&[("ECHOPILOT_JOBS__RETENTION__ENABLED", "sometimes")]),
        )
        .unwrap_err();
        assert_eq!(err.key, "jobs.retention.enabled", "{err}");

        // Ranges are checked at load time, before anything binds.
        let err = Config::load_from(
            &Overrides::default(),
            &env(&[("ECHOPILOT_TELEMETRY__SAMPLE_INTERVAL_SECS", "0")]),
        )
        .unwrap_err();
        assert_eq!(err.key, "telemetry.sample_interval_secs");

        // A file section of an area that does not exist is refused, naming the sections.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[nosuch]\nx = 1\n").unwrap();
        let err = Config::load_from(
            &Overrides {
                config_file: Some(file),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert_eq!(err.key, "nosuch");
        assert!(err.message.contains("marketplace"), "{err}");
    }
}

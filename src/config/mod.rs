//! Loading and validating `config.toml` (SPEC §2).
//!
//! Each section is read by serde into the derived types of `fields`, whose
//! values check themselves; unknown keys are what `serde_ignored` reports.
//! The TOML parser's spans give every error and warning its file, line and
//! section/key. The original's quirks still load: lines starting with `;`
//! are comments, `user`/`password` may be missing, `exec` under a `device_`
//! section makes it an agent.

mod fields;
mod specs;
mod summary;
mod text;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::filter::Filter;
use fields::{keys, Text};
use text::{sections, sections_stand_alone, semicolon_comments, Lines};

pub use specs::Specs;

pub const DEFAULT_BASE_TOPIC: &str = "home/monitoring";
pub const DEFAULT_CLIENT_ID: &str = "iotmonitor";
/// `[mqtt] keepAlive`: a dead broker link is noticed within 1.5 times this
/// many seconds (see link/mod.rs for the MQTT keep-alive it announces).
pub const DEFAULT_KEEP_ALIVE: u64 = 20;
pub const DEFAULT_WATCH_TIMEOUT: u64 = 30;
pub const DEFAULT_HA_PREFIX: &str = "homeassistant";

/// Every section of the file with the keys it takes, as the loader reads
/// them (for hints, and for the man page generator to check that each one
/// is documented).
pub fn known_keys() -> [(&'static str, &'static [&'static str]); 7] {
    [
        ("mqtt", keys::<fields::Mqtt>()),
        ("http", keys::<fields::Http>()),
        ("homeassistant", keys::<fields::HomeAssistant>()),
        ("broker", keys::<fields::Broker>()),
        ("failover", keys::<fields::Failover>()),
        ("device_<name>", keys::<fields::Device>()),
        ("agent_<name>", keys::<fields::Device>()),
    ]
}

#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    pub server_address: String,
    pub base_topic: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub client_id: String,
    pub retain_states: bool,
    /// Seconds: a dead broker link is noticed within 1.5 times this.
    pub keep_alive: u64,
    pub tls: Tls,
}

impl MqttConfig {
    /// Whether the broker is reached over TLS (`ssl://` or `mqtts://`).
    pub fn uses_tls(&self) -> bool {
        ["ssl://", "mqtts://"]
            .iter()
            .any(|scheme| self.server_address.starts_with(scheme))
    }
}

/// TLS files for `ssl://`/`mqtts://` brokers. Without a CA file the
/// system's trust store is used.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub key_password: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    pub name: String,
    pub watch_timeout: u64,
    pub hello_topic: Option<String>,
    pub watch_topics: Vec<Filter>,
    pub state_topics: Vec<Filter>,
    /// Set for agents: the shell command to launch.
    pub exec: Option<String>,
    pub restart_on_expire: bool,
}

impl DeviceConfig {
    pub fn is_agent(&self) -> bool {
        self.exec.is_some()
    }

    /// A device for unit tests: filters given as text (valid ones).
    #[cfg(test)]
    pub(crate) fn for_test(
        name: &str,
        timeout: u64,
        watch: &[&str],
        state: &[&str],
        hello: Option<&str>,
    ) -> DeviceConfig {
        DeviceConfig {
            name: name.into(),
            watch_timeout: timeout,
            hello_topic: hello.map(String::from),
            watch_topics: watch.iter().map(|f| Filter::parse(f).unwrap()).collect(),
            state_topics: state.iter().map(|f| Filter::parse(f).unwrap()).collect(),
            exec: None,
            restart_on_expire: false,
        }
    }
}

/// `[homeassistant]`: MQTT discovery of one connectivity binary_sensor per
/// device.
#[derive(Debug, Clone, PartialEq)]
pub struct HomeAssistant {
    pub prefix: String,
}

/// The Home Assistant object id of a device: its name with every character
/// other than an ASCII letter, digit or `-` replaced by `_`.
pub fn object_id(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `[failover] enabled=true`: this instance is one of several sharing the
/// broker and base topic; the highest priority is active (SPEC §9).
#[derive(Debug, Clone, PartialEq)]
pub struct Failover {
    pub priority: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mqtt: MqttConfig,
    /// In file order.
    pub devices: Vec<DeviceConfig>,
    /// `[http] bind`: the status page address, off when absent.
    pub http_bind: Option<SocketAddr>,
    /// Set when `[homeassistant] discovery=true`.
    pub homeassistant: Option<HomeAssistant>,
    /// `[broker] listen`: run the embedded broker on this address.
    pub broker_listen: Option<SocketAddr>,
    /// Set when `[failover] enabled=true`.
    pub failover: Option<Failover>,
}

/// A configuration problem, located in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// `section` or `section.key`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The result of a successful load: the configuration and the warnings
/// (unknown keys and sections) to log.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<ConfigError>,
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        key: None,
        message: format!("cannot read the configuration file: {e}"),
    })?;
    parse(path, &text)
}

/// Validates configuration text; `path` is only used in messages (and
/// relative TLS files are taken from its directory).
pub fn parse(path: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let text = semicolon_comments(text);
    let mut loader = Loader {
        file: path,
        lines: Lines::new(&text),
        offset: 0,
        warnings: Vec::new(),
        found: Found::default(),
    };
    // A large configuration (thousands of devices) is parsed a section at
    // a time, so that its whole parse tree never sits in memory. When the
    // sections cannot stand alone (a parse error, a table continued in
    // another section), the whole document is parsed instead: it gives the
    // exact error or the merged tables.
    let chunks = sections(&text);
    if chunks.len() > 1 && sections_stand_alone(&text, &chunks) {
        for chunk in chunks {
            loader.document(&text[chunk.clone()], chunk.start)?;
        }
    } else {
        loader.document(&text, 0)?;
    }
    let config = loader.finish()?;
    Ok(Loaded {
        config,
        warnings: loader.warnings,
    })
}

struct Loader<'a> {
    file: &'a Path,
    lines: Lines,
    /// Where the text being parsed starts in the file (spans are relative
    /// to it).
    offset: usize,
    warnings: Vec<ConfigError>,
    found: Found,
}

/// What the sections read so far configured.
#[derive(Default)]
struct Found {
    mqtt: Option<MqttConfig>,
    http_bind: Option<SocketAddr>,
    homeassistant: Option<HomeAssistant>,
    broker_listen: Option<SocketAddr>,
    failover: Option<Failover>,
    /// The line of `[failover]`.
    failover_line: Option<usize>,
    devices: Vec<DeviceConfig>,
    /// Section name and line of each device, in the same order.
    origins: Vec<(String, usize)>,
    /// Device and agent names, with the line defining them.
    names: HashMap<String, usize>,
}

impl Loader<'_> {
    /// The 1-based line of a byte offset in the text being parsed.
    fn line(&self, offset: usize) -> usize {
        self.lines.line(self.offset + offset)
    }

    fn error(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: Some(self.line(span.start)),
            key: Some(key.into()),
            message: message.into(),
        }
    }

    fn warn(&mut self, span: Range<usize>, key: String, message: String) {
        let w = self.error(span, key, message);
        self.warnings.push(w);
    }

    /// An error of the whole file (no line).
    fn file_error(&self, key: &str, message: &str) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: None,
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// Parses a text (the file, or one of its sections starting at
    /// `offset`) and takes in its sections.
    fn document(&mut self, text: &str, offset: usize) -> Result<(), ConfigError> {
        self.offset = offset;
        let root = DeTable::parse(text).map_err(|e| ConfigError {
            file: self.file.to_path_buf(),
            line: e.span().map(|s| self.line(s.start)),
            key: None,
            message: format!("invalid TOML: {}", e.message().trim()),
        })?;
        for (key, value) in root.into_inner() {
            self.section(key, value)?;
        }
        Ok(())
    }

    fn section(
        &mut self,
        key: Spanned<DeString<'_>>,
        value: Spanned<DeValue<'_>>,
    ) -> Result<(), ConfigError> {
        let span = key.span();
        let section = key.get_ref().as_ref();
        if !value.get_ref().is_table() {
            self.warn(
                span,
                section.to_string(),
                "key outside of any section, ignored".into(),
            );
            return Ok(());
        }
        match section {
            "mqtt" => {
                let raw = self.read::<fields::Mqtt>(section, value)?;
                self.found.mqtt = Some(self.mqtt(raw)?);
            }
            "http" => {
                self.found.http_bind = self.read::<fields::Http>(section, value)?.bind.map(|a| a.0);
            }
            "homeassistant" => {
                let raw = self.read::<fields::HomeAssistant>(section, value)?;
                self.found.homeassistant =
                    raw.discovery.is_some_and(|d| d.0).then(|| HomeAssistant {
                        prefix: raw.prefix.map_or(DEFAULT_HA_PREFIX.into(), |p| p.0),
                    });
            }
            "broker" => {
                if !cfg!(feature = "broker") {
                    return Err(self.error(
                        span,
                        section,
                        "this iotmonitor was built without the embedded broker (cargo feature \"broker\")",
                    ));
                }
                let listen = self.read::<fields::Broker>(section, value)?.listen;
                let listen = listen.ok_or_else(|| {
                    self.error(
                        span.clone(),
                        "broker.listen",
                        "missing listen (e.g. listen=\"127.0.0.1:1883\")",
                    )
                })?;
                self.found.broker_listen = Some(listen.0);
            }
            "failover" => {
                let raw = self.read::<fields::Failover>(section, value)?;
                self.found.failover = raw.enabled.is_some_and(|e| e.0).then(|| Failover {
                    priority: raw.priority.map_or(0, |p| p.0),
                });
                self.found.failover_line = Some(self.line(span.start));
            }
            _ => {
                if let Some(name) = section.strip_prefix("device_") {
                    self.device(section, name, false, span, value)?;
                } else if let Some(name) = section.strip_prefix("agent_") {
                    self.device(section, name, true, span, value)?;
                } else {
                    let hint = suggestion(section, &known_keys().map(|(s, _)| s));
                    self.warn(
                        span,
                        section.to_string(),
                        format!("unknown section, ignored{hint}"),
                    );
                }
            }
        }
        Ok(())
    }

    /// Reads a section's table into its derived type. A value that fails
    /// its check is an error at its line; unknown keys are warnings naming
    /// the closest known key.
    fn read<T: for<'de> Deserialize<'de>>(
        &mut self,
        section: &str,
        value: Spanned<DeValue<'_>>,
    ) -> Result<T, ConfigError> {
        // Each key with the span of its value, to name the key of an error.
        let entries: Vec<(Spanned<DeString<'_>>, Range<usize>)> = value
            .get_ref()
            .as_table()
            .into_iter()
            .flat_map(|t| t.iter().map(|(k, v)| (k.clone(), v.span())))
            .collect();
        let mut ignored = Vec::new();
        let read = serde_ignored::deserialize(ValueDeserializer::from(value), |path| {
            if let serde_ignored::Path::Map { key, .. } = path {
                ignored.push(key);
            }
        });
        for key in ignored {
            if let Some((k, _)) = entries.iter().find(|(k, _)| k.get_ref().as_ref() == key) {
                let hint = suggestion(&key, keys::<T>());
                self.warn(
                    k.span(),
                    format!("{section}.{key}"),
                    format!("unknown key, ignored{hint}"),
                );
            }
        }
        read.map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            let key = entries
                .iter()
                .find(|(_, v)| v.contains(&at))
                .map_or(section.to_string(), |(k, _)| {
                    format!("{section}.{}", k.get_ref().as_ref())
                });
            self.error(at..at, key, e.message())
        })
    }

    fn mqtt(&self, raw: fields::Mqtt) -> Result<MqttConfig, ConfigError> {
        Ok(MqttConfig {
            server_address: raw.server_address.map(|s| s.0).unwrap_or_default(),
            base_topic: raw.base_topic.map_or(DEFAULT_BASE_TOPIC.into(), |t| {
                t.0.trim_end_matches('/').to_string()
            }),
            user: Text::non_empty(raw.user),
            password: Text::non_empty(raw.password),
            client_id: raw.clientid.map_or(DEFAULT_CLIENT_ID.into(), |c| c.0),
            retain_states: raw.retain_states.is_some_and(|f| f.0),
            keep_alive: raw.keep_alive.map_or(DEFAULT_KEEP_ALIVE, |k| k.0),
            tls: Tls {
                ca_file: self.file("mqtt.caFile", raw.ca_file)?,
                cert_file: self.file("mqtt.certFile", raw.cert_file)?,
                key_file: self.file("mqtt.keyFile", raw.key_file)?,
                key_password: Text::non_empty(raw.key_password),
            },
        })
    }

    /// A readable file; relative paths are taken from the configuration
    /// file's directory.
    fn file(
        &self,
        key: &str,
        value: Option<Spanned<Text>>,
    ) -> Result<Option<PathBuf>, ConfigError> {
        let Some(value) = value else { return Ok(None) };
        let file = self
            .file
            .parent()
            .unwrap_or(Path::new(""))
            .join(&value.get_ref().0);
        std::fs::File::open(&file).map_err(|e| {
            self.error(
                value.span(),
                key,
                format!("cannot read '{}': {e}", file.display()),
            )
        })?;
        Ok(Some(file))
    }

    fn device(
        &mut self,
        section: &str,
        name: &str,
        agent: bool,
        span: Range<usize>,
        value: Spanned<DeValue<'_>>,
    ) -> Result<(), ConfigError> {
        if name.is_empty() {
            return Err(self.error(span, section, "the section needs a name after the prefix"));
        }
        if let Some(c) = name.chars().find(|&c| matches!(c, '/' | '+' | '#' | '\0')) {
            return Err(self.error(
                span,
                section,
                format!(
                    "the name cannot contain '{}': it is used in topics",
                    c.escape_default()
                ),
            ));
        }
        if let Some(first) = self.found.names.get(name) {
            return Err(self.error(
                span,
                section,
                format!("a device or agent named '{name}' is already defined at line {first}"),
            ));
        }
        let line = self.line(span.start);
        self.found.names.insert(name.to_string(), line);
        let raw = self.read::<fields::Device>(section, value)?;
        let Some(watch_topics) = raw.watch_topics else {
            return Err(self.error(
                span,
                format!("{section}.watchTopics"),
                "missing watchTopics (a topic filter or a list of them)",
            ));
        };
        let exec = raw.exec.map(|c| c.0);
        if exec.is_some()
            && !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(self.error(
                span,
                section,
                "an agent's name may only hold letters, digits, '_', '-' and '.' (it goes into a shell command and a file name)",
            ));
        }
        if agent && exec.is_none() {
            return Err(self.error(
                span,
                format!("{section}.exec"),
                "an agent needs exec, the command that starts it",
            ));
        }
        let restart_on_expire = raw.restart_on_expire.is_some_and(|f| f.0);
        if restart_on_expire && exec.is_none() {
            return Err(self.error(
                span,
                format!("{section}.restartOnExpire"),
                "restartOnExpire needs exec (only agents can be restarted)",
            ));
        }
        self.found.devices.push(DeviceConfig {
            name: name.to_string(),
            watch_timeout: raw.watch_timeout.map_or(DEFAULT_WATCH_TIMEOUT, |s| s.0),
            hello_topic: raw.hello_topic.map(|t| t.0),
            watch_topics: watch_topics.0,
            state_topics: raw.state_topics.map(|f| f.0).unwrap_or_default(),
            exec,
            restart_on_expire,
        });
        self.found.origins.push((section.to_string(), line));
        Ok(())
    }

    /// The configuration, once every section is in.
    fn finish(&mut self) -> Result<Config, ConfigError> {
        let found = std::mem::take(&mut self.found);
        let mut mqtt = found.mqtt.ok_or_else(|| {
            self.file_error(
                "mqtt",
                "missing [mqtt] section (with serverAddress=\"tcp://host:1883\")",
            )
        })?;
        if mqtt.server_address.is_empty() {
            match found.broker_listen {
                // The daemon then talks to its embedded broker.
                Some(addr) => mqtt.server_address = format!("tcp://{addr}"),
                None => return Err(self.file_error(
                    "mqtt.serverAddress",
                    "missing serverAddress in [mqtt] (e.g. serverAddress=\"tcp://localhost:1883\")",
                )),
            }
        }
        if found.homeassistant.is_some() {
            self.distinct_object_ids(&found.devices, &found.origins)?;
        }
        if found.failover.is_some() && mqtt.client_id == DEFAULT_CLIENT_ID {
            self.warnings.push(ConfigError {
                file: self.file.to_path_buf(),
                line: found.failover_line,
                key: Some("failover".into()),
                message: format!(
                    "instances sharing a broker need distinct client ids: set [mqtt] clientid (this one has the default '{DEFAULT_CLIENT_ID}')"
                ),
            });
        }
        Ok(Config {
            mqtt,
            devices: found.devices,
            http_bind: found.http_bind,
            homeassistant: found.homeassistant,
            broker_listen: found.broker_listen,
            failover: found.failover,
        })
    }

    /// Home Assistant tells devices apart by object id, which folds some
    /// names together (`esp.01` and `esp_01`): two devices with the same
    /// one would overwrite each other's discovery.
    fn distinct_object_ids(
        &self,
        devices: &[DeviceConfig],
        origins: &[(String, usize)],
    ) -> Result<(), ConfigError> {
        let mut ids: HashMap<String, usize> = HashMap::with_capacity(devices.len());
        for (i, d) in devices.iter().enumerate() {
            let id = object_id(&d.name);
            if let Some(&first) = ids.get(&id) {
                let (section, line) = &origins[i];
                let (first_section, first_line) = &origins[first];
                return Err(ConfigError {
                    file: self.file.to_path_buf(),
                    line: Some(*line),
                    key: Some(section.clone()),
                    message: format!(
                        "its Home Assistant object id '{id}' is also the one of [{first_section}] at line {first_line}: rename one of them (object ids keep only letters, digits and '-')"
                    ),
                });
            }
            ids.insert(id, i);
        }
        Ok(())
    }
}

/// ", did you mean 'x'?" for the closest known name, or nothing.
fn suggestion(unknown: &str, known: &[&str]) -> String {
    let lower = unknown.to_lowercase();
    known
        .iter()
        .map(|k| (strsim::levenshtein(&lower, &k.to_lowercase()), k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!(", did you mean '{k}'?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<Loaded, ConfigError> {
        parse(Path::new("test.toml"), text)
    }

    fn err(text: &str) -> ConfigError {
        load_str(text).expect_err("config should be rejected")
    }

    const MQTT: &str = "[mqtt]\nserverAddress=\"tcp://localhost:1883\"\n";

    #[test]
    fn keep_alive_defaults_and_bounds() {
        assert_eq!(load_str(MQTT).unwrap().config.mqtt.keep_alive, 20);
        let c = load_str(&format!("{MQTT}keepAlive=60\n")).unwrap();
        assert_eq!(c.config.mqtt.keep_alive, 60);
        for v in ["4", "3601", "\"20\"", "-1"] {
            let e = err(&format!("{MQTT}keepAlive={v}\n"));
            assert_eq!(e.key.as_deref(), Some("mqtt.keepAlive"), "{v}");
            assert_eq!(e.line, Some(3), "{v}");
        }
    }

    /// The original iotmonitor's example configuration, as shipped.
    const ORIGINAL: &str = include_str!("../../tests/fixtures/original-config.toml");

    #[test]
    fn original_example_loads() {
        let loaded = load_str(ORIGINAL).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let c = loaded.config;
        assert_eq!(c.mqtt.server_address, "tcp://localhost:1883");
        assert_eq!(c.mqtt.base_topic, "home/monitoring");
        assert_eq!(c.mqtt.user, None);
        assert_eq!(c.mqtt.client_id, "iotmonitor");
        let names: Vec<&str> = c.devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["esp04", "esp02", "ledboxdaemon"]);
        assert_eq!(c.devices[0].watch_timeout, 60);
        assert_eq!(c.devices[0].hello_topic.as_deref(), Some("home/esp04"));
        assert_eq!(
            c.devices[0].state_topics[0].as_str(),
            "home/esp04/actuators/#"
        );
        assert_eq!(c.devices[1].watch_timeout, DEFAULT_WATCH_TIMEOUT);
        assert!(c.devices[2].is_agent());
        assert!(!c.devices[0].is_agent());
    }

    #[test]
    fn arrays_exec_on_device_and_defaults() {
        let c = load_str(&format!(
            "{MQTT}[device_a]\nwatchTopics=[\"a/1\",\"a/2/#\"]\nstateTopics=[\"s/+\"]\nexec=\"sleep 1\"\nrestartOnExpire=true\n"
        ))
        .unwrap()
        .config;
        let d = &c.devices[0];
        assert_eq!(d.watch_topics.len(), 2);
        assert_eq!(d.watch_topics[0].as_str(), "a/1/#");
        assert!(d.is_agent() && d.restart_on_expire);
    }

    #[test]
    fn missing_mqtt_section() {
        let e = err("[device_a]\nwatchTopics=\"a\"\n");
        assert_eq!(e.key.as_deref(), Some("mqtt"));
        assert!(
            e.to_string().starts_with("test.toml: mqtt: missing [mqtt]"),
            "{e}"
        );
    }

    #[test]
    fn missing_server_address() {
        let e = err("[mqtt]\nbaseTopic=\"x\"\n");
        assert_eq!(e.key.as_deref(), Some("mqtt.serverAddress"));
        let e = err("[mqtt]\nserverAddress=\"localhost:1883\"\n");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn broken_toml_names_the_line() {
        let e = err(&format!("{MQTT}\n[device_a\nwatchTopics=\"a\"\n"));
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("invalid TOML"));
    }

    #[test]
    fn device_without_watch_topics() {
        let e = err(&format!("{MQTT}[device_a]\nwatchTimeOut=5\n"));
        assert_eq!(e.key.as_deref(), Some("device_a.watchTopics"));
        assert_eq!(e.line, Some(3));
        let e = err(&format!("{MQTT}[device_a]\nwatchTopics=[]\n"));
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn bad_watch_timeouts() {
        for v in ["0", "-5", "\"60\"", "1.5", "999999999999"] {
            let e = err(&format!(
                "{MQTT}[device_a]\nwatchTopics=\"a\"\nwatchTimeOut={v}\n"
            ));
            assert_eq!(e.key.as_deref(), Some("device_a.watchTimeOut"), "{v}");
            assert_eq!(e.line, Some(5), "{v}");
        }
    }

    #[test]
    fn invalid_filters_and_topics() {
        let long = format!("\"{}\"", "a/".repeat(40_000));
        for (k, v) in [
            ("watchTopics", "\"a/#/b\""),
            ("watchTopics", "\"a/b+\""),
            ("watchTopics", "\"\""),
            ("stateTopics", "[\"ok\", \"x#\"]"),
            ("stateTopics", long.as_str()),
            ("helloTopic", "\"a/+\""),
            ("helloTopic", "\"\""),
            ("helloTopic", long.as_str()),
        ] {
            let text = if k == "watchTopics" {
                format!("{MQTT}[device_a]\n{k}={v}\n")
            } else {
                format!("{MQTT}[device_a]\nwatchTopics=\"a\"\n{k}={v}\n")
            };
            let e = err(&text);
            assert_eq!(
                e.key.as_deref(),
                Some(format!("device_a.{k}").as_str()),
                "{k}={v}"
            );
            if v == long {
                assert!(e.to_string().contains("65,535 bytes"), "{k}: {e}");
            }
        }
    }

    #[test]
    fn agent_without_exec() {
        let e = err(&format!("{MQTT}[agent_x]\nwatchTopics=\"a\"\n"));
        assert_eq!(e.key.as_deref(), Some("agent_x.exec"));
    }

    #[test]
    fn duplicate_names() {
        let e = err(&format!(
            "{MQTT}[device_x]\nwatchTopics=\"a\"\n[agent_x]\nexec=\"true\"\nwatchTopics=\"b\"\n"
        ));
        assert_eq!(e.line, Some(5));
        assert!(e.message.contains("already defined at line 3"), "{e}");
        let e = err(&format!(
            "{MQTT}[device_x]\nwatchTopics=\"a\"\n[device_x]\nwatchTopics=\"b\"\n"
        ));
        assert_eq!(e.line, Some(5), "{e}");
    }

    #[test]
    fn names_must_fit_topics_and_shell() {
        let e = err(&format!("{MQTT}[\"device_a/b\"]\nwatchTopics=\"a\"\n"));
        assert_eq!(e.line, Some(3));
        let e = err(&format!(
            "{MQTT}[\"agent_a b\"]\nexec=\"true\"\nwatchTopics=\"a\"\n"
        ));
        assert!(e.message.contains("agent's name"), "{e}");
        assert!(load_str(&format!("{MQTT}[\"device_a b\"]\nwatchTopics=\"a\"\n")).is_ok());
    }

    #[test]
    fn unknown_keys_warn_with_closest() {
        let loaded = load_str(&format!(
            "{MQTT}serverAdress=\"x\"\n[device_a]\nwatchTopics=\"a\"\nwatchTimeout=5\n[devices_b]\nx=1\n"
        ))
        .unwrap();
        let w: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("did you mean 'serverAddress'"), "{w:?}");
        assert!(
            w[1].contains(":6: device_a.watchTimeout") && w[1].contains("'watchTimeOut'"),
            "{w:?}"
        );
        assert!(w[2].contains("devices_b"), "{w:?}");
    }

    #[test]
    fn tables_continued_elsewhere_fall_back_to_the_whole_document() {
        // [device_a.extra] continues device_a: parsed whole, it is one
        // device (with an unknown key).
        let loaded = load_str(&format!(
            "{MQTT}[device_a]\nwatchTopics=\"a\"\n[device_b]\nwatchTopics=\"b\"\n[device_a.extra]\nx=1\n"
        ))
        .unwrap();
        assert_eq!(loaded.config.devices.len(), 2);
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.to_string().contains("device_a.extra")),
            "{:?}",
            loaded.warnings
        );
        // A multi-line array with a line starting with '[' still loads.
        let c = load_str(&format!("{MQTT}[device_a]\nwatchTopics=[\n[\"a\"],\n]\n"));
        assert_eq!(c.unwrap_err().key.as_deref(), Some("device_a.watchTopics"));
        let c = load_str(&format!(
            "{MQTT}[device_a]\nwatchTopics=[\n\"a\",\n\"b\"]\n"
        ))
        .unwrap();
        assert_eq!(c.config.devices[0].watch_topics.len(), 2);
    }

    #[test]
    fn semicolon_comments_keep_line_numbers() {
        let e = err(&format!(
            "{MQTT}; a comment\n  ;another\n[device_a]\nwatchTimeOut=0\nwatchTopics=\"a\"\n"
        ));
        assert_eq!(e.line, Some(6));
    }

    #[test]
    fn http_and_homeassistant_sections() {
        let c = load_str(&format!(
            "{MQTT}[http]\nbind=\"127.0.0.1:8079\"\n[homeassistant]\ndiscovery=true\n"
        ))
        .unwrap()
        .config;
        assert_eq!(c.http_bind, Some("127.0.0.1:8079".parse().unwrap()));
        assert_eq!(c.homeassistant.unwrap().prefix, "homeassistant");
        let c = load_str(MQTT).unwrap().config;
        assert_eq!((c.http_bind, c.homeassistant), (None, None));
        let e = err(&format!("{MQTT}[http]\nbind=\"localhost\"\n"));
        assert_eq!((e.key.as_deref(), e.line), (Some("http.bind"), Some(4)));
    }

    #[test]
    fn broker_section_makes_server_address_optional() {
        let c = load_str("[mqtt]\n[broker]\nlisten=\"127.0.0.1:1883\"\n")
            .unwrap()
            .config;
        assert_eq!(c.broker_listen, Some("127.0.0.1:1883".parse().unwrap()));
        assert_eq!(c.mqtt.server_address, "tcp://127.0.0.1:1883");
        let e = err("[mqtt]\n[broker]\nlisten=\"nowhere\"\n");
        assert_eq!((e.key.as_deref(), e.line), (Some("broker.listen"), Some(3)));
        let e = err("[mqtt]\n[broker]\n");
        assert_eq!(e.key.as_deref(), Some("broker.listen"));
    }

    #[test]
    fn tls_files_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        let path = dir.path().join("config.toml");
        let text = "[mqtt]\nserverAddress=\"ssl://h:8883\"\ncaFile=\"ca.pem\"\n";
        let c = parse(&path, text).unwrap().config;
        assert_eq!(c.mqtt.tls.ca_file, Some(dir.path().join("ca.pem")));
        let e = parse(&path, &format!("{text}certFile=\"missing.pem\"\n")).unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("mqtt.certFile"), Some(4)));
        assert!(e.message.contains("missing.pem"), "{e}");
    }

    #[test]
    fn empty_user_is_anonymous_and_password_kept() {
        let c = load_str("[mqtt]\nserverAddress=\"ssl://h:8883\"\nuser=\"u\"\npassword=\"p\"\n")
            .unwrap()
            .config;
        assert_eq!(c.mqtt.user.as_deref(), Some("u"));
        assert_eq!(c.mqtt.password.as_deref(), Some("p"));
    }

    #[test]
    fn failover_section() {
        let c = load_str(MQTT).unwrap().config;
        assert_eq!(c.failover, None);
        let c = load_str(&format!("{MQTT}[failover]\nenabled=false\npriority=5\n"))
            .unwrap()
            .config;
        assert_eq!(c.failover, None);
        let loaded =
            load_str(&format!("{MQTT}clientid=\"a\"\n[failover]\nenabled=true\n")).unwrap();
        assert_eq!(loaded.config.failover, Some(Failover { priority: 0 }));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let c = load_str(&format!(
            "{MQTT}clientid=\"b\"\n[failover]\nenabled=true\npriority=-7\n"
        ))
        .unwrap()
        .config;
        assert_eq!(c.failover, Some(Failover { priority: -7 }));
        for (text, key, line, message) in [
            (
                "enabled=1",
                "failover.enabled",
                4,
                "must be true or false, not integer",
            ),
            (
                "priority=\"high\"",
                "failover.priority",
                4,
                "must be a whole number, not string",
            ),
            (
                "priority=1.5",
                "failover.priority",
                4,
                "must be a whole number, not float",
            ),
            (
                "priority=9223372036854775808",
                "failover.priority",
                4,
                "must be a whole number from -9223372036854775808 to 9223372036854775807",
            ),
        ] {
            let e = err(&format!("{MQTT}[failover]\n{text}\n"));
            assert_eq!(
                (e.key.as_deref(), e.line, e.message.as_str()),
                (Some(key), Some(line), message),
                "{text}"
            );
        }
    }

    #[test]
    fn failover_warns_about_the_default_client_id_and_typos() {
        let loaded = load_str(&format!("{MQTT}[failover]\nenabled=true\npriorty=3\n")).unwrap();
        let w: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            w,
            [
                "test.toml:5: failover.priorty: unknown key, ignored, did you mean 'priority'?",
                "test.toml:3: failover: instances sharing a broker need distinct client ids: set [mqtt] clientid (this one has the default 'iotmonitor')",
            ]
        );
        let loaded = load_str(&format!("{MQTT}[failovr]\nenabled=true\n")).unwrap();
        assert!(
            loaded.warnings[0]
                .to_string()
                .contains("did you mean 'failover'"),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn home_assistant_object_ids_must_differ() {
        let devices = "[\"device_esp.01\"]\nwatchTopics=\"a\"\n[device_x]\nwatchTopics=\"x\"\n[agent_esp_01]\nexec=\"true\"\nwatchTopics=\"b\"\n";
        // Without discovery the names may fold together.
        assert_eq!(
            load_str(&format!("{MQTT}{devices}"))
                .unwrap()
                .config
                .devices
                .len(),
            3
        );
        let e = err(&format!("{MQTT}[homeassistant]\ndiscovery=true\n{devices}"));
        assert_eq!(
            e.to_string(),
            "test.toml:9: agent_esp_01: its Home Assistant object id 'esp_01' is also the one of [device_esp.01] at line 5: rename one of them (object ids keep only letters, digits and '-')"
        );
        assert!(load_str(&format!(
            "{MQTT}[homeassistant]\ndiscovery=true\n[device_a-1]\nwatchTopics=\"a\"\n[device_a_1]\nwatchTopics=\"b\"\n"
        ))
        .is_ok());
        assert_eq!(object_id("esp.01 b/é"), "esp_01_b__");
    }

    #[test]
    fn every_value_type_is_named_in_messages() {
        for (value, kind) in [
            ("1979-05-27T07:32:00Z", "datetime"),
            ("{a=1}", "table"),
            ("[1]", "array"),
            ("1.5", "float"),
            ("99999999999999999999", "integer"),
        ] {
            let e = err(&format!("{MQTT}baseTopic={value}\n"));
            assert_eq!(
                (e.key.as_deref(), e.line, e.message),
                (
                    Some("mqtt.baseTopic"),
                    Some(3),
                    format!("must be a string, not {kind}")
                )
            );
        }
        let e = err(&format!(
            "{MQTT}[device_a]\nwatchTopics=\"a\"\nwatchTimeOut=99999999999999999999\n"
        ));
        assert_eq!(e.key.as_deref(), Some("device_a.watchTimeOut"));
        assert!(
            e.message.starts_with("must be a positive whole number"),
            "{e}"
        );
    }

    #[test]
    fn filter_errors_name_the_line_of_the_item() {
        let e = err(&format!(
            "{MQTT}[device_a]\nwatchTopics=[\n  \"a\",\n  \"b/#/c\",\n]\n"
        ));
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("device_a.watchTopics"), Some(6))
        );
        assert!(
            e.message.starts_with("invalid topic filter 'b/#/c': "),
            "{e}"
        );
    }

    #[test]
    fn known_keys_are_what_the_sections_accept() {
        let keys: HashMap<&str, &[&str]> = known_keys().into_iter().collect();
        assert_eq!(
            keys["mqtt"],
            [
                "serverAddress",
                "baseTopic",
                "user",
                "password",
                "clientid",
                "retainStates",
                "keepAlive",
                "caFile",
                "certFile",
                "keyFile",
                "keyPassword"
            ]
        );
        assert_eq!(
            keys["device_<name>"],
            [
                "watchTimeOut",
                "helloTopic",
                "watchTopics",
                "stateTopics",
                "exec",
                "restartOnExpire"
            ]
        );
        assert_eq!(keys["agent_<name>"], keys["device_<name>"]);
        assert_eq!(keys["http"], ["bind"]);
        assert_eq!(keys["broker"], ["listen"]);
        assert_eq!(keys["homeassistant"], ["discovery", "prefix"]);
        assert_eq!(keys["failover"], ["enabled", "priority"]);
    }

    #[test]
    fn summary_covers_every_section_never_a_password() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["ca.pem", "me.pem", "me.key"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let text = "[mqtt]\nserverAddress=\"ssl://h:8883\"\nuser=\"u\"\npassword=\"pw-1\"\nclientid=\"c1\"\nretainStates=true\ncaFile=\"ca.pem\"\ncertFile=\"me.pem\"\nkeyFile=\"me.key\"\nkeyPassword=\"pw-2\"\n\
            [http]\nbind=\"127.0.0.1:8079\"\n[homeassistant]\ndiscovery=true\n[broker]\nlisten=\"127.0.0.1:1883\"\n[failover]\nenabled=true\npriority=3\n\
            [device_d]\nwatchTopics=\"d/#\"\n[agent_a]\nexec=\"run a\"\nwatchTopics=\"a\"\nrestartOnExpire=true\n";
        let c = parse(&dir.path().join("config.toml"), text).unwrap().config;
        let s = c.summary();
        let d = dir.path().display();
        for line in [
            "[mqtt] broker the embedded broker (see [broker]) as client id 'c1', user 'u' with a password, base topic home/monitoring, states replayed retained, keepAlive 20 s".to_string(),
            format!("[mqtt] TLS: server checked against CA file {d}/ca.pem, client certificate {d}/me.pem, key file {d}/me.key with a password (unused: the daemon talks to the embedded broker)"),
            "[http] status page on http://127.0.0.1:8079/".into(),
            "[homeassistant] discovery on, under homeassistant/binary_sensor/".into(),
            "[broker] embedded broker, devices connect to 127.0.0.1:1883".into(),
            "[failover] on, priority 3".into(),
            "2 devices, 1 of them agents".into(),
            "  device d: timeout 30 s, watch [d/#], state [], hello -".into(),
            "  agent  a: timeout 30 s, watch [a/#], state [], hello -, exec \"run a\", restarted when expired".into(),
        ] {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in:\n{s}");
        }
        assert!(!s.contains("pw-"), "{s}");
        let s = load_str(MQTT).unwrap().config.summary();
        for line in [
            "[mqtt] broker tcp://localhost:1883 as client id 'iotmonitor', anonymous, base topic home/monitoring, states replayed not retained, keepAlive 20 s",
            "[http] off (no status page)",
            "[homeassistant] discovery off",
            "[broker] off (external broker)",
            "[failover] off (single instance)",
            "0 devices, 0 of them agents",
        ] {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in:\n{s}");
        }
        assert!(!s.contains("TLS"), "{s}");
    }
}

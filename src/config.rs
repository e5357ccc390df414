//! Loading and validating `config.toml` (SPEC §2).
//!
//! The file is parsed with span information so that every error names the
//! file, the line and the section/key. The original's quirks still load:
//! lines starting with `;` are comments, `user`/`password` may be missing,
//! `exec` under a `device_` section makes it an agent.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::filter::{validate_topic, Filter};

pub const DEFAULT_BASE_TOPIC: &str = "home/monitoring";
pub const DEFAULT_CLIENT_ID: &str = "iotmonitor";
pub const DEFAULT_WATCH_TIMEOUT: u64 = 30;
/// `[mqtt] keepAlive`: a dead broker link is noticed within 1.5 times this
/// many seconds (see link.rs for the MQTT keep-alive it announces).
pub const DEFAULT_KEEP_ALIVE: u64 = 20;
const KEEP_ALIVE_RANGE: std::ops::RangeInclusive<u64> = 5..=3600;
/// Ten years: larger timeouts are certainly typos and would overflow clocks.
const MAX_WATCH_TIMEOUT: u64 = 10 * 365 * 24 * 3600;

const MQTT_KEYS: &[&str] = &[
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
    "keyPassword",
];
const DEVICE_KEYS: &[&str] = &[
    "watchTimeOut",
    "helloTopic",
    "watchTopics",
    "stateTopics",
    "exec",
    "restartOnExpire",
];
const HA_KEYS: &[&str] = &["discovery", "prefix"];
const SECTIONS: &[&str] = &[
    "mqtt",
    "http",
    "homeassistant",
    "broker",
    "device_<name>",
    "agent_<name>",
];
pub const DEFAULT_HA_PREFIX: &str = "homeassistant";

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
}

/// `[homeassistant]`: MQTT discovery of one connectivity binary_sensor per
/// device.
#[derive(Debug, Clone, PartialEq)]
pub struct HomeAssistant {
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mqtt: MqttConfig,
    /// In file order.
    pub devices: Vec<DeviceConfig>,
    /// `[http] bind`: the status page address, off when absent.
    pub http_bind: Option<std::net::SocketAddr>,
    /// Set when `[homeassistant] discovery=true`.
    pub homeassistant: Option<HomeAssistant>,
    /// `[broker] listen`: run the embedded broker on this address.
    pub broker_listen: Option<std::net::SocketAddr>,
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

/// Validates configuration text; `path` is only used in messages.
pub fn parse(path: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let text = semicolon_comments(text);
    let line_starts = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut p = Parser {
        file: path,
        line_starts,
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
            let table = DeTable::parse(&text[chunk.clone()]).map_err(|e| p.toml_error(&e))?;
            p.offset = chunk.start;
            p.entries(table.get_ref())?;
        }
    } else {
        let root = DeTable::parse(&text).map_err(|e| p.toml_error(&e))?;
        p.entries(root.get_ref())?;
    }
    let config = p.finish()?;
    Ok(Loaded {
        config,
        warnings: p.warnings,
    })
}

/// Byte ranges of the text split before each line that opens a table
/// (`[...]`), outside multi-line strings.
fn sections(text: &str) -> Vec<Range<usize>> {
    const BASIC: &str = "\"\"\"";
    const LITERAL: &str = "'''";
    let mut starts = vec![0];
    let mut in_string: Option<&str> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if in_string.is_none() && at > 0 && line.trim_start().starts_with('[') {
            starts.push(at);
        }
        let mut rest = line;
        loop {
            // The next delimiter that opens or closes a multi-line string.
            let next = match in_string {
                Some(d) => rest.find(d).map(|pos| (pos, d)),
                None => [BASIC, LITERAL]
                    .iter()
                    .filter_map(|d| rest.find(d).map(|pos| (pos, *d)))
                    .min(),
            };
            let Some((pos, d)) = next else { break };
            rest = &rest[pos + d.len()..];
            in_string = if in_string.is_some() { None } else { Some(d) };
        }
        at += line.len();
    }
    starts.push(text.len());
    starts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Does every section parse alone, each top-level name in one section only?
fn sections_stand_alone(text: &str, chunks: &[Range<usize>]) -> bool {
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    chunks
        .iter()
        .all(|c| match DeTable::parse(&text[c.clone()]) {
            Ok(t) => t
                .get_ref()
                .iter()
                .all(|(k, _)| seen.insert(k.get_ref().to_string())),
            Err(_) => false,
        })
}

/// The original accepted `;` comment lines; TOML does not. Turn them into
/// `#` comments, keeping every byte offset (and so every line number).
fn semicolon_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(comment) = trimmed.strip_prefix(';') {
            out.push_str(&line[..line.len() - trimmed.len()]);
            out.push('#');
            out.push_str(comment);
        } else {
            out.push_str(line);
        }
    }
    out
}

struct Parser<'a> {
    file: &'a Path,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// Where the text being parsed starts in the file (spans are relative
    /// to it).
    offset: usize,
    warnings: Vec<ConfigError>,
    found: Found,
}

/// What the sections parsed so far configured.
#[derive(Default)]
struct Found {
    mqtt: Option<MqttConfig>,
    http_bind: Option<std::net::SocketAddr>,
    homeassistant: Option<HomeAssistant>,
    broker_listen: Option<std::net::SocketAddr>,
    devices: Vec<DeviceConfig>,
    /// Device and agent names, with the line defining them.
    names: HashMap<String, usize>,
}

type Entry<'t, 'i> = (
    &'t Spanned<std::borrow::Cow<'i, str>>,
    &'t Spanned<DeValue<'i>>,
);

impl Parser<'_> {
    /// The 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        self.line_starts
            .partition_point(|&start| start <= self.offset + offset)
    }

    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: e.span().map(|s| self.line(s.start)),
            key: None,
            message: format!("invalid TOML: {}", e.message().trim()),
        }
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

    /// Takes in the top-level entries (sections) of a parsed text.
    fn entries(&mut self, root: &DeTable<'_>) -> Result<(), ConfigError> {
        for (key, value) in Self::sorted(root) {
            let section = key.get_ref().as_ref();
            let table = match value.get_ref() {
                DeValue::Table(t) => t,
                _ => {
                    self.warn(
                        key.span(),
                        section.to_string(),
                        "key outside of any section, ignored".into(),
                    );
                    continue;
                }
            };
            let kind = if section == "mqtt" {
                self.found.mqtt = Some(self.mqtt(table)?);
                continue;
            } else if section == "http" {
                self.found.http_bind =
                    self.address_section("http", "bind", "127.0.0.1:8079", table)?;
                continue;
            } else if section == "homeassistant" {
                self.found.homeassistant = self.homeassistant(table)?;
                continue;
            } else if section == "broker" {
                self.found.broker_listen = Some(self.broker(key.span(), table)?);
                continue;
            } else if let Some(name) = section.strip_prefix("device_") {
                (name, false)
            } else if let Some(name) = section.strip_prefix("agent_") {
                (name, true)
            } else {
                let hint = suggestion(section, SECTIONS);
                self.warn(
                    key.span(),
                    section.to_string(),
                    format!("unknown section, ignored{hint}"),
                );
                continue;
            };
            let (name, agent) = kind;
            if name.is_empty() {
                return Err(self.error(
                    key.span(),
                    section,
                    "the section needs a name after the prefix",
                ));
            }
            if let Some(c) = name.chars().find(|&c| matches!(c, '/' | '+' | '#' | '\0')) {
                return Err(self.error(
                    key.span(),
                    section,
                    format!(
                        "the name cannot contain '{}': it is used in topics",
                        c.escape_default()
                    ),
                ));
            }
            if let Some(first) = self.found.names.get(name) {
                return Err(self.error(
                    key.span(),
                    section,
                    format!("a device or agent named '{name}' is already defined at line {first}"),
                ));
            }
            let line = self.line(key.span().start);
            self.found.names.insert(name.to_string(), line);
            let device = self.device(section, name, agent, key.span(), table)?;
            self.found.devices.push(device);
        }
        Ok(())
    }

    /// The configuration, once every section is in.
    fn finish(&mut self) -> Result<Config, ConfigError> {
        let found = std::mem::take(&mut self.found);
        let mut mqtt = found.mqtt.ok_or_else(|| ConfigError {
            file: self.file.to_path_buf(),
            line: None,
            key: Some("mqtt".into()),
            message: "missing [mqtt] section (with serverAddress=\"tcp://host:1883\")".into(),
        })?;
        if mqtt.server_address.is_empty() {
            match found.broker_listen {
                // The daemon then talks to its embedded broker.
                Some(addr) => mqtt.server_address = format!("tcp://{addr}"),
                None => {
                    return Err(ConfigError {
                        file: self.file.to_path_buf(),
                        line: None,
                        key: Some("mqtt.serverAddress".into()),
                        message: "missing serverAddress in [mqtt] (e.g. serverAddress=\"tcp://localhost:1883\")"
                            .into(),
                    })
                }
            }
        }
        Ok(Config {
            mqtt,
            devices: found.devices,
            http_bind: found.http_bind,
            homeassistant: found.homeassistant,
            broker_listen: found.broker_listen,
        })
    }

    /// A section with one address key (`[http] bind`, `[broker] listen`);
    /// other keys are warnings.
    fn address_section(
        &mut self,
        section: &str,
        key_name: &str,
        example: &str,
        table: &DeTable<'_>,
    ) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let mut addr = None;
        for (key, value) in Self::sorted(table) {
            let k = key.get_ref().as_ref();
            let path = format!("{section}.{k}");
            if k == key_name {
                addr = Some(self.socket_addr(&path, value, example)?);
            } else {
                let hint = suggestion(k, &[key_name]);
                self.warn(key.span(), path, format!("unknown key, ignored{hint}"));
            }
        }
        Ok(addr)
    }

    fn broker(
        &mut self,
        section: Range<usize>,
        table: &DeTable<'_>,
    ) -> Result<std::net::SocketAddr, ConfigError> {
        if !cfg!(feature = "broker") {
            return Err(self.error(
                section,
                "broker",
                "this iotmonitor was built without the embedded broker (cargo feature \"broker\")",
            ));
        }
        self.address_section("broker", "listen", "127.0.0.1:1883", table)?
            .ok_or_else(|| {
                self.error(
                    section,
                    "broker.listen",
                    "missing listen (e.g. listen=\"127.0.0.1:1883\")",
                )
            })
    }

    fn homeassistant(&mut self, table: &DeTable<'_>) -> Result<Option<HomeAssistant>, ConfigError> {
        let mut discovery = false;
        let mut prefix = DEFAULT_HA_PREFIX.to_string();
        for (key, value) in Self::sorted(table) {
            let k = key.get_ref().as_ref();
            let path = format!("homeassistant.{k}");
            match k {
                "discovery" => discovery = self.boolean(&path, value)?,
                "prefix" => {
                    prefix = self.string(&path, value)?;
                    validate_topic(&prefix)
                        .map_err(|e| self.error(value.span(), &path, e.to_string()))?;
                }
                other => {
                    let hint = suggestion(other, HA_KEYS);
                    self.warn(key.span(), path, format!("unknown key, ignored{hint}"));
                }
            }
        }
        Ok(discovery.then_some(HomeAssistant { prefix }))
    }

    fn sorted<'t, 'i>(table: &'t DeTable<'i>) -> Vec<Entry<'t, 'i>> {
        let mut entries: Vec<Entry<'t, 'i>> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        entries
    }

    fn mqtt(&mut self, table: &DeTable<'_>) -> Result<MqttConfig, ConfigError> {
        let mut cfg = MqttConfig {
            server_address: String::new(),
            base_topic: DEFAULT_BASE_TOPIC.into(),
            user: None,
            password: None,
            client_id: DEFAULT_CLIENT_ID.into(),
            retain_states: false,
            keep_alive: DEFAULT_KEEP_ALIVE,
            tls: Tls::default(),
        };
        let mut server = None;
        for (key, value) in Self::sorted(table) {
            let k = key.get_ref().as_ref();
            let path = format!("mqtt.{k}");
            match k {
                "serverAddress" => {
                    let s = self.string(&path, value)?;
                    check_server_address(&s).map_err(|m| self.error(value.span(), &path, m))?;
                    server = Some(s);
                }
                "baseTopic" => {
                    let s = self.string(&path, value)?;
                    validate_topic(&s)
                        .map_err(|e| self.error(value.span(), &path, e.to_string()))?;
                    cfg.base_topic = s.trim_end_matches('/').to_string();
                }
                "user" => cfg.user = Some(self.string(&path, value)?).filter(|s| !s.is_empty()),
                "password" => {
                    cfg.password = Some(self.string(&path, value)?).filter(|s| !s.is_empty())
                }
                "clientid" => {
                    let s = self.string(&path, value)?;
                    if s.is_empty() {
                        return Err(self.error(
                            value.span(),
                            &path,
                            "the client id cannot be empty",
                        ));
                    }
                    cfg.client_id = s;
                }
                "retainStates" => cfg.retain_states = self.boolean(&path, value)?,
                "keepAlive" => {
                    cfg.keep_alive = match value.get_ref() {
                        DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix())
                            .ok()
                            .filter(|n| KEEP_ALIVE_RANGE.contains(n)),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        self.error(
                            value.span(),
                            &path,
                            format!(
                                "must be a whole number of seconds from {} to {}",
                                KEEP_ALIVE_RANGE.start(),
                                KEEP_ALIVE_RANGE.end()
                            ),
                        )
                    })?;
                }
                "caFile" => cfg.tls.ca_file = Some(self.file(&path, value)?),
                "certFile" => cfg.tls.cert_file = Some(self.file(&path, value)?),
                "keyFile" => cfg.tls.key_file = Some(self.file(&path, value)?),
                "keyPassword" => {
                    cfg.tls.key_password =
                        Some(self.string(&path, value)?).filter(|s| !s.is_empty())
                }
                other => {
                    let hint = suggestion(other, MQTT_KEYS);
                    self.warn(key.span(), path, format!("unknown key, ignored{hint}"));
                }
            }
        }
        cfg.server_address = server.unwrap_or_default();
        Ok(cfg)
    }

    fn device(
        &mut self,
        section: &str,
        name: &str,
        agent: bool,
        section_span: Range<usize>,
        table: &DeTable<'_>,
    ) -> Result<DeviceConfig, ConfigError> {
        let mut dev = DeviceConfig {
            name: name.to_string(),
            watch_timeout: DEFAULT_WATCH_TIMEOUT,
            hello_topic: None,
            watch_topics: Vec::new(),
            state_topics: Vec::new(),
            exec: None,
            restart_on_expire: false,
        };
        let mut has_watch = false;
        for (key, value) in Self::sorted(table) {
            let k = key.get_ref().as_ref();
            let path = format!("{section}.{k}");
            match k {
                "watchTimeOut" => {
                    dev.watch_timeout = match value.get_ref() {
                        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                            .ok()
                            .filter(|&n| n > 0 && (n as u64) <= MAX_WATCH_TIMEOUT)
                            .map(|n| n as u64),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        self.error(
                            value.span(),
                            &path,
                            format!("must be a positive whole number of seconds (at most {MAX_WATCH_TIMEOUT})"),
                        )
                    })?;
                }
                "helloTopic" => {
                    let s = self.string(&path, value)?;
                    validate_topic(&s)
                        .map_err(|e| self.error(value.span(), &path, e.to_string()))?;
                    dev.hello_topic = Some(s);
                }
                "watchTopics" => {
                    dev.watch_topics = self.filters(&path, value)?;
                    has_watch = true;
                }
                "stateTopics" => dev.state_topics = self.filters(&path, value)?,
                "exec" => {
                    let s = self.string(&path, value)?;
                    if s.trim().is_empty() {
                        return Err(self.error(value.span(), &path, "the command cannot be empty"));
                    }
                    dev.exec = Some(s);
                }
                "restartOnExpire" => dev.restart_on_expire = self.boolean(&path, value)?,
                other => {
                    let hint = suggestion(other, DEVICE_KEYS);
                    self.warn(key.span(), path, format!("unknown key, ignored{hint}"));
                }
            }
        }
        if !has_watch {
            return Err(self.error(
                section_span,
                format!("{section}.watchTopics"),
                "missing watchTopics (a topic filter or a list of them)",
            ));
        }
        if dev.exec.is_some()
            && !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(self.error(
                section_span,
                section,
                "an agent's name may only hold letters, digits, '_', '-' and '.' (it goes into a shell command and a file name)",
            ));
        }
        if agent && dev.exec.is_none() {
            return Err(self.error(
                section_span,
                format!("{section}.exec"),
                "an agent needs exec, the command that starts it",
            ));
        }
        if dev.restart_on_expire && dev.exec.is_none() {
            return Err(self.error(
                section_span,
                format!("{section}.restartOnExpire"),
                "restartOnExpire needs exec (only agents can be restarted)",
            ));
        }
        Ok(dev)
    }

    fn string(&self, path: &str, value: &Spanned<DeValue<'_>>) -> Result<String, ConfigError> {
        match value.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            other => Err(self.error(
                value.span(),
                path,
                format!("must be a string, not {}", other.type_str()),
            )),
        }
    }

    /// A readable file; relative paths are taken from the configuration
    /// file's directory.
    fn file(&self, path: &str, value: &Spanned<DeValue<'_>>) -> Result<PathBuf, ConfigError> {
        let s = self.string(path, value)?;
        let file = self.file.parent().unwrap_or(Path::new("")).join(&s);
        std::fs::File::open(&file).map_err(|e| {
            self.error(
                value.span(),
                path,
                format!("cannot read '{}': {e}", file.display()),
            )
        })?;
        Ok(file)
    }

    fn socket_addr(
        &self,
        path: &str,
        value: &Spanned<DeValue<'_>>,
        example: &str,
    ) -> Result<std::net::SocketAddr, ConfigError> {
        let s = self.string(path, value)?;
        s.parse().map_err(|_| {
            self.error(
                value.span(),
                path,
                format!("'{s}' is not an address:port such as {example}"),
            )
        })
    }

    fn boolean(&self, path: &str, value: &Spanned<DeValue<'_>>) -> Result<bool, ConfigError> {
        match value.get_ref() {
            DeValue::Boolean(b) => Ok(*b),
            other => Err(self.error(
                value.span(),
                path,
                format!("must be true or false, not {}", other.type_str()),
            )),
        }
    }

    /// A filter or an array of filters, at least one.
    fn filters(
        &self,
        path: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<Vec<Filter>, ConfigError> {
        let items: Vec<&Spanned<DeValue<'_>>> = match value.get_ref() {
            DeValue::Array(a) => a.iter().collect(),
            _ => vec![value],
        };
        if items.is_empty() {
            return Err(self.error(value.span(), path, "needs at least one topic filter"));
        }
        items
            .into_iter()
            .map(|item| {
                let s = self.string(path, item)?;
                Filter::parse(&s).map_err(|e| {
                    self.error(
                        item.span(),
                        path,
                        format!("invalid topic filter '{s}': {e}"),
                    )
                })
            })
            .collect()
    }
}

fn check_server_address(s: &str) -> Result<(), String> {
    const SCHEMES: &[&str] = &["tcp://", "ssl://", "mqtt://", "mqtts://"];
    let Some(rest) = SCHEMES.iter().find_map(|p| s.strip_prefix(p)) else {
        return Err(format!(
            "'{s}' must start with one of {} (e.g. tcp://localhost:1883)",
            SCHEMES.join(", ")
        ));
    };
    if rest.is_empty() || rest.starts_with(':') {
        return Err(format!("'{s}' has no host name"));
    }
    Ok(())
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

    /// The original iotmonitor's example configuration, as shipped.
    const ORIGINAL: &str = include_str!("../tests/fixtures/original-config.toml");

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

    #[test]
    fn invalid_filters_and_topics() {
        for (k, v) in [
            ("watchTopics", "\"a/#/b\""),
            ("watchTopics", "\"a/b+\""),
            ("watchTopics", "\"\""),
            ("stateTopics", "[\"ok\", \"x#\"]"),
            ("helloTopic", "\"a/+\""),
            ("helloTopic", "\"\""),
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
    fn sections_split_outside_multiline_strings() {
        let text = "a=1\n[x]\nk=\"\"\"\n[not a section]\n\"\"\"\n  [y]\nv='''\n[z]'''\n[w]\n";
        let parts: Vec<&str> = sections(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            parts,
            [
                "a=1\n",
                "[x]\nk=\"\"\"\n[not a section]\n\"\"\"\n",
                "  [y]\nv='''\n[z]'''\n",
                "[w]\n"
            ]
        );
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
}

//! The sections of `config.toml` as serde reads them, and the value types
//! that check themselves while they are read. A failed check is a message
//! only: the TOML deserializer attaches the span of the value (of the array
//! item, for filters), and the loader turns that into file, line and key.

use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize as Derive;
use toml::{Spanned, Value};

use crate::filter::{validate_topic, Filter};

/// Ten years: larger timeouts are certainly typos and would overflow clocks.
pub const MAX_WATCH_TIMEOUT: u64 = 10 * 365 * 24 * 3600;

/// `[mqtt]`.
#[derive(Derive)]
#[serde(rename_all = "camelCase")]
pub struct Mqtt {
    pub server_address: Option<ServerAddress>,
    pub base_topic: Option<Topic>,
    pub user: Option<Text>,
    pub password: Option<Text>,
    pub clientid: Option<ClientId>,
    pub retain_states: Option<Flag>,
    pub keep_alive: Option<KeepAlive>,
    pub ca_file: Option<Spanned<Text>>,
    pub cert_file: Option<Spanned<Text>>,
    pub key_file: Option<Spanned<Text>>,
    pub key_password: Option<Text>,
}

/// `[device_<name>]` and `[agent_<name>]`.
#[derive(Derive)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    #[serde(rename = "watchTimeOut")]
    pub watch_timeout: Option<Seconds>,
    pub hello_topic: Option<Topic>,
    pub watch_topics: Option<Filters>,
    pub state_topics: Option<Filters>,
    pub exec: Option<Command>,
    pub restart_on_expire: Option<Flag>,
}

/// `[http]`.
#[derive(Derive)]
pub struct Http {
    pub bind: Option<Address<8079>>,
}

/// `[broker]`.
#[derive(Derive)]
pub struct Broker {
    pub listen: Option<Address<1883>>,
}

/// `[homeassistant]`.
#[derive(Derive)]
pub struct HomeAssistant {
    pub discovery: Option<Flag>,
    pub prefix: Option<Topic>,
}

/// `[failover]`.
#[derive(Derive)]
pub struct Failover {
    pub enabled: Option<Flag>,
    pub priority: Option<Priority>,
}

/// The keys a section type accepts, as serde derive names them (for the
/// "did you mean" hint of an unknown key).
pub fn keys<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut keys: &'static [&'static str] = &[];
    // Always an error: the capture stops the derived code at once.
    let _ = T::deserialize(KeyCapture(&mut keys));
    keys
}

/// A deserializer that only records the field names a derived struct asks
/// for.
struct KeyCapture<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for KeyCapture<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a section"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("keys captured"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// A value that checks itself: from the TOML value read, or a message
/// saying what is wrong with it.
pub trait Check: Sized {
    fn check(value: Value) -> Result<Self, String>;

    /// An integer beyond TOML's 64-bit range: checked as the largest one,
    /// which every key that takes a number refuses.
    fn check_huge() -> Result<Self, String> {
        Self::check(Value::Integer(i64::MAX))
    }

    /// An array, by default checked as a whole (one that even a TOML value
    /// cannot hold, with a number out of range, is checked as an array).
    fn check_seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<Self, A::Error> {
        let value = Value::deserialize(SeqAccessDeserializer::new(seq))
            .unwrap_or_else(|_: A::Error| Value::Array(Vec::new()));
        Self::check(value).map_err(de::Error::custom)
    }
}

/// Rebuilds the TOML value the deserializer offers and checks it, inside
/// the deserializer's frame for that value (so an error gets its span).
struct CheckVisitor<T>(PhantomData<T>);

fn checked<T: Check, E: de::Error>(value: Value) -> Result<T, E> {
    T::check(value).map_err(E::custom)
}

impl<'de, T: Check> Visitor<'de> for CheckVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        checked(Value::Boolean(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        checked(Value::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
        T::check_huge().map_err(E::custom)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<T, E> {
        T::check_huge().map_err(E::custom)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<T, E> {
        T::check_huge().map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        checked(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        checked(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<T, E> {
        checked(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        T::check_seq(seq)
    }

    /// A table, or a date-time (which TOML deserializers present as a map;
    /// a table with a number out of range is still a table).
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        checked(
            Value::deserialize(MapAccessDeserializer::new(map))
                .unwrap_or_else(|_: A::Error| Value::Table(toml::Table::new())),
        )
    }
}

/// `Deserialize` through `Check` for the value types below.
macro_rules! deserialize_by_check {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(CheckVisitor(PhantomData))
            }
        }
    )*};
}

deserialize_by_check!(
    Text,
    Flag,
    Seconds,
    KeepAlive,
    Topic,
    FilterItem,
    Filters,
    ServerAddress,
    ClientId,
    Command,
    Priority
);

impl<'de, const PORT: u16> Deserialize<'de> for Address<PORT> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckVisitor(PhantomData))
    }
}

fn string(value: Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(format!("must be a string, not {}", other.type_str())),
    }
}

/// Any string.
pub struct Text(pub String);

impl Check for Text {
    fn check(value: Value) -> Result<Self, String> {
        string(value).map(Text)
    }
}

impl Text {
    /// Empty means absent (`user=""` is anonymous).
    pub fn non_empty(text: Option<Text>) -> Option<String> {
        text.map(|t| t.0).filter(|s| !s.is_empty())
    }
}

pub struct Flag(pub bool);

impl Check for Flag {
    fn check(value: Value) -> Result<Self, String> {
        match value {
            Value::Boolean(b) => Ok(Flag(b)),
            other => Err(format!("must be true or false, not {}", other.type_str())),
        }
    }
}

/// `watchTimeOut`: whole seconds, more than zero.
pub struct Seconds(pub u64);

impl Check for Seconds {
    fn check(value: Value) -> Result<Self, String> {
        match value {
            Value::Integer(n) if n > 0 && n as u64 <= MAX_WATCH_TIMEOUT => Ok(Seconds(n as u64)),
            _ => Err(format!(
                "must be a positive whole number of seconds (at most {MAX_WATCH_TIMEOUT})"
            )),
        }
    }
}

/// `keepAlive`: whole seconds within [`KEEP_ALIVE_RANGE`].
pub struct KeepAlive(pub u64);

/// A dead broker link is noticed within 1.5 × `keepAlive`: shorter than 5 s
/// would be noise, longer than an hour a typo.
pub const KEEP_ALIVE_RANGE: std::ops::RangeInclusive<u64> = 5..=3600;

impl Check for KeepAlive {
    fn check(value: Value) -> Result<Self, String> {
        match value {
            Value::Integer(n) if n >= 0 && KEEP_ALIVE_RANGE.contains(&(n as u64)) => {
                Ok(KeepAlive(n as u64))
            }
            _ => Err(format!(
                "must be a whole number of seconds from {} to {}",
                KEEP_ALIVE_RANGE.start(),
                KEEP_ALIVE_RANGE.end()
            )),
        }
    }
}

/// An exact topic (no wildcard).
pub struct Topic(pub String);

impl Check for Topic {
    fn check(value: Value) -> Result<Self, String> {
        let s = string(value)?;
        validate_topic(&s).map_err(|e| e.to_string())?;
        Ok(Topic(s))
    }
}

/// One topic filter.
pub struct FilterItem(Filter);

impl Check for FilterItem {
    fn check(value: Value) -> Result<Self, String> {
        let s = string(value)?;
        Filter::parse(&s)
            .map(FilterItem)
            .map_err(|e| format!("invalid topic filter '{s}': {e}"))
    }
}

/// A topic filter or an array of them, at least one.
pub struct Filters(pub Vec<Filter>);

impl Check for Filters {
    fn check(value: Value) -> Result<Self, String> {
        FilterItem::check(value).map(|f| Filters(vec![f.0]))
    }

    /// Item by item, so that an error names the item's line.
    fn check_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut filters = Vec::new();
        while let Some(FilterItem(f)) = seq.next_element()? {
            filters.push(f);
        }
        if filters.is_empty() {
            return Err(de::Error::custom("needs at least one topic filter"));
        }
        Ok(Filters(filters))
    }
}

/// `serverAddress`: `tcp://`, `ssl://`, `mqtt://` or `mqtts://` and a host.
pub struct ServerAddress(pub String);

impl Check for ServerAddress {
    fn check(value: Value) -> Result<Self, String> {
        const SCHEMES: &[&str] = &["tcp://", "ssl://", "mqtt://", "mqtts://"];
        let s = string(value)?;
        let Some(rest) = SCHEMES.iter().find_map(|p| s.strip_prefix(p)) else {
            return Err(format!(
                "'{s}' must start with one of {} (e.g. tcp://localhost:1883)",
                SCHEMES.join(", ")
            ));
        };
        if rest.is_empty() || rest.starts_with(':') {
            return Err(format!("'{s}' has no host name"));
        }
        Ok(ServerAddress(s))
    }
}

pub struct ClientId(pub String);

impl Check for ClientId {
    fn check(value: Value) -> Result<Self, String> {
        let s = string(value)?;
        if s.is_empty() {
            return Err("the client id cannot be empty".into());
        }
        Ok(ClientId(s))
    }
}

/// An agent's `exec` line.
pub struct Command(pub String);

impl Check for Command {
    fn check(value: Value) -> Result<Self, String> {
        let s = string(value)?;
        if s.trim().is_empty() {
            return Err("the command cannot be empty".into());
        }
        Ok(Command(s))
    }
}

/// `address:port`; `PORT` is the one of the example in the message.
pub struct Address<const PORT: u16>(pub SocketAddr);

impl<const PORT: u16> Check for Address<PORT> {
    fn check(value: Value) -> Result<Self, String> {
        let s = string(value)?;
        s.parse()
            .map(Address)
            .map_err(|_| format!("'{s}' is not an address:port such as 127.0.0.1:{PORT}"))
    }
}

/// `[failover] priority`: any whole number.
pub struct Priority(pub i64);

impl Check for Priority {
    fn check(value: Value) -> Result<Self, String> {
        match value {
            Value::Integer(n) => Ok(Priority(n)),
            other => Err(format!("must be a whole number, not {}", other.type_str())),
        }
    }

    fn check_huge() -> Result<Self, String> {
        Err(format!(
            "must be a whole number from {} to {}",
            i64::MIN,
            i64::MAX
        ))
    }
}

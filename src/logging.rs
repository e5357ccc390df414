//! Logging to stderr through `log`/`env_logger`, filtered by `RUST_LOG`
//! (default `info`).
//!
//! The level `RUST_LOG` gives (`info`, `debug`, ...) is the daemon's own.
//! Other crates (rumqttd, Paho, tiny_http, ...) log at `warn` by default,
//! and never louder than the daemon; `RUST_LOG=info,rumqttd=debug` still
//! opens one of them on purpose. Two caps always hold: Paho's Rust wrapper
//! logs its connect options, password included, at debug (`paho_mqtt` at
//! most `info`), and Paho C formats a trace line per packet at the level
//! derived from `paho_mqtt_c`, costing more CPU than everything else
//! together (`paho_mqtt_c` at most `warn`).

use log::LevelFilter;

/// The daemon's own log target (its crate).
const OWN: &str = "iotmonitor";

/// Targets that never log louder than a level, whatever `RUST_LOG` says.
const CAPS: &[(&str, LevelFilter)] = &[
    ("paho_mqtt", LevelFilter::Info),
    ("paho_mqtt_c", LevelFilter::Warn),
    // The link logs connection losses and subscription failures once, in
    // words; the wrapper's own lines would repeat them (with a pointer
    // address).
    ("paho_mqtt::async_client", LevelFilter::Error),
    ("paho_mqtt::token", LevelFilter::Error),
];

/// Sets up the logger from `RUST_LOG`.
pub fn init() {
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    env_logger::Builder::new()
        .parse_filters(&filters(&spec))
        .format_timestamp_millis()
        .init();
}

/// The env_logger filter applied for a `RUST_LOG` value.
pub fn filters(spec: &str) -> String {
    let (directives, regex) = match spec.split_once('/') {
        Some((d, r)) => (d, Some(r)),
        None => (spec, None),
    };
    let mut own = LevelFilter::Info;
    let mut named: Vec<(String, LevelFilter)> = Vec::new();
    for d in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        match d.split_once('=') {
            Some((target, level)) => {
                if let Ok(level) = level.trim().parse() {
                    named.push((target.trim().to_string(), level));
                }
            }
            None => match d.parse() {
                Ok(level) => own = level,
                // A bare target: everything it logs.
                Err(_) => named.push((d.to_string(), LevelFilter::Trace)),
            },
        }
    }
    if !named.iter().any(|(t, _)| t == OWN) {
        named.push((OWN.to_string(), own));
    }
    let others = own.min(LevelFilter::Warn);
    for (target, cap) in CAPS {
        match named.iter_mut().find(|(t, _)| t == target) {
            Some((_, level)) => *level = (*level).min(*cap),
            // Explicit, so that a directive for a prefix ("paho") cannot
            // open them.
            None => named.push((target.to_string(), others.min(*cap))),
        }
    }
    let mut out = others.to_string().to_lowercase();
    for (target, level) in named {
        out.push_str(&format!(",{target}={}", level.to_string().to_lowercase()));
    }
    if let Some(regex) = regex {
        out.push('/');
        out.push_str(regex);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::filters;

    #[test]
    fn others_at_warn_and_never_louder_than_the_daemon() {
        let base =
            ",paho_mqtt=warn,paho_mqtt_c=warn,paho_mqtt::async_client=error,paho_mqtt::token=error";
        assert_eq!(filters(""), format!("warn,iotmonitor=info{base}"));
        assert_eq!(filters("debug"), format!("warn,iotmonitor=debug{base}"));
        assert_eq!(
            filters("error"),
            "error,iotmonitor=error,paho_mqtt=error,paho_mqtt_c=error,paho_mqtt::async_client=error,paho_mqtt::token=error"
        );
        assert_eq!(
            filters("off"),
            "off,iotmonitor=off,paho_mqtt=off,paho_mqtt_c=off,paho_mqtt::async_client=off,paho_mqtt::token=off"
        );
    }

    #[test]
    fn named_targets_are_kept_within_the_caps() {
        assert_eq!(
            filters("info,rumqttd=debug,iotmonitor::daemon=trace"),
            "warn,rumqttd=debug,iotmonitor::daemon=trace,iotmonitor=info,paho_mqtt=warn,paho_mqtt_c=warn,paho_mqtt::async_client=error,paho_mqtt::token=error"
        );
        assert_eq!(
            filters("trace,paho_mqtt=trace,paho_mqtt_c"),
            "warn,paho_mqtt=info,paho_mqtt_c=warn,iotmonitor=trace,paho_mqtt::async_client=error,paho_mqtt::token=error"
        );
        assert_eq!(
            filters("iotmonitor=debug/connected"),
            "warn,iotmonitor=debug,paho_mqtt=warn,paho_mqtt_c=warn,paho_mqtt::async_client=error,paho_mqtt::token=error/connected"
        );
    }
}

//! Home Assistant MQTT discovery (`[homeassistant] discovery=true`): one
//! Home Assistant device per monitored device or agent, linked through
//! `via_device` to a device standing for this iotmonitor, with three
//! entities — connectivity (`binary_sensor`), last seen (timestamp
//! `sensor`) and hello count (diagnostic `sensor`). Configs are retained,
//! sent at QoS 1, and carry an `origin` block and `default_entity_id`
//! (Home Assistant's replacement for the deprecated `object_id`).

use serde_json::{json, Value};

use super::topics::Topics;
use crate::config::object_id;

/// Where the project lives, for Home Assistant's `origin.support_url`.
const SUPPORT_URL: &str = env!("CARGO_PKG_HOMEPAGE");

/// One discovery config: topic and JSON payload.
pub type Config = (String, String);

pub struct Discovery {
    prefix: String,
    /// The object id of the client id: names this iotmonitor.
    node: String,
    client_id: String,
}

impl Discovery {
    pub fn new(prefix: &str, client_id: &str) -> Discovery {
        Discovery {
            prefix: prefix.to_string(),
            node: object_id(client_id),
            client_id: client_id.to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/status`: Home Assistant announces `online` there when it
    /// (re)starts, asking for every config again.
    pub fn status_topic(&self) -> String {
        format!("{}/status", self.prefix)
    }

    fn origin() -> Value {
        json!({
            "name": "iotmonitor",
            "sw_version": crate::VERSION,
            "support_url": SUPPORT_URL,
        })
    }

    fn hub_id(&self) -> String {
        format!("iotmonitor_{}", self.node)
    }

    /// The Home Assistant device standing for this iotmonitor, with one
    /// connectivity entity following `B/status`.
    pub fn hub(&self, topics: &Topics) -> Config {
        let name = if self.client_id == "iotmonitor" {
            "iotmonitor".to_string()
        } else {
            format!("iotmonitor {}", self.client_id)
        };
        let payload = json!({
            "name": null,
            "unique_id": self.hub_id(),
            "default_entity_id": format!("binary_sensor.{}", self.hub_id()).to_ascii_lowercase(),
            "device_class": "connectivity",
            "entity_category": "diagnostic",
            "state_topic": topics.status(),
            "payload_on": "online",
            "payload_off": "offline",
            "device": {
                "identifiers": [self.hub_id()],
                "name": name,
                "manufacturer": "iotmonitor",
                "model": "MQTT watchdog",
                "sw_version": crate::VERSION,
            },
            "origin": Self::origin(),
        });
        (
            format!("{}/binary_sensor/{}/status/config", self.prefix, self.node),
            payload.to_string(),
        )
    }

    /// The discovery topics of a device's entities (to clear them when
    /// the device is removed).
    pub fn topics(&self, name: &str) -> [String; 3] {
        let object = object_id(name);
        [
            format!(
                "{}/binary_sensor/{}/{object}/config",
                self.prefix, self.node
            ),
            format!(
                "{}/sensor/{}/{object}_last_seen/config",
                self.prefix, self.node
            ),
            format!(
                "{}/sensor/{}/{object}_hello_count/config",
                self.prefix, self.node
            ),
        ]
    }

    /// The configs of a device's three entities.
    pub fn device(&self, topics: &Topics, name: &str, agent: bool) -> [Config; 3] {
        let object = object_id(name);
        let id = format!("iotmonitor_{}_{object}", self.node);
        let device = json!({
            "identifiers": [id],
            "name": name,
            "manufacturer": "iotmonitor",
            "model": if agent { "Agent supervised by iotmonitor" } else { "Device watched by iotmonitor" },
            "via_device": self.hub_id(),
        });
        let common = |suffix: &str, domain: &str| {
            json!({
                "unique_id": format!("{id}{suffix}"),
                "default_entity_id":
                    format!("{domain}.iotmonitor_{object}{suffix}").to_ascii_lowercase(),
                "availability_topic": topics.status(),
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": device,
                "origin": Self::origin(),
            })
        };
        let with = |mut base: Value, extra: Value| {
            if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
                b.extend(e);
            }
            base.to_string()
        };
        let [connectivity, last_seen, hello_count] = self.topics(name);
        [
            (
                connectivity,
                with(
                    common("", "binary_sensor"),
                    json!({
                        "name": null,
                        "device_class": "connectivity",
                        "state_topic": topics.availability(name),
                        "payload_on": "online",
                        "payload_off": "offline",
                    }),
                ),
            ),
            (
                last_seen,
                with(
                    common("_last_seen", "sensor"),
                    json!({
                        "name": "Last seen",
                        "device_class": "timestamp",
                        "state_topic": topics.last_seen(name),
                    }),
                ),
            ),
            (
                hello_count,
                with(
                    common("_hello_count", "sensor"),
                    json!({
                        "name": "Hello count",
                        "entity_category": "diagnostic",
                        "state_class": "total_increasing",
                        "state_topic": topics.hello_count(name),
                    }),
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys Home Assistant documents for MQTT `binary_sensor` and `sensor`
    /// discovery (home-assistant.io/integrations/binary_sensor.mqtt and
    /// sensor.mqtt), for `device` and for `origin`; abbreviations allowed.
    const ENTITY_KEYS: &[&str] = &[
        "availability",
        "availability_mode",
        "availability_template",
        "availability_topic",
        "default_entity_id",
        "device",
        "device_class",
        "enabled_by_default",
        "encoding",
        "entity_category",
        "entity_picture",
        "expire_after",
        "force_update",
        "icon",
        "json_attributes_template",
        "json_attributes_topic",
        "name",
        "off_delay",
        "origin",
        "payload_available",
        "payload_not_available",
        "payload_off",
        "payload_on",
        "platform",
        "qos",
        "state_topic",
        "unique_id",
        "value_template",
    ];
    const SENSOR_ONLY_KEYS: &[&str] = &[
        "last_reset_value_template",
        "options",
        "suggested_display_precision",
        "state_class",
        "unit_of_measurement",
    ];
    const DEVICE_KEYS: &[&str] = &[
        "configuration_url",
        "connections",
        "hw_version",
        "identifiers",
        "manufacturer",
        "model",
        "model_id",
        "name",
        "serial_number",
        "suggested_area",
        "sw_version",
        "via_device",
    ];
    const ORIGIN_KEYS: &[&str] = &["name", "sw_version", "support_url"];
    const ENTITY_CATEGORIES: &[&str] = &["config", "diagnostic"];
    const BINARY_SENSOR_CLASSES: &[&str] = &["connectivity", "problem", "running"];
    const SENSOR_CLASSES: &[&str] = &["timestamp", "duration"];
    const STATE_CLASSES: &[&str] = &["measurement", "total", "total_increasing"];

    /// Checks one config against the documented schema.
    fn check(topic: &str, payload: &str) {
        let v: Value = serde_json::from_str(payload).unwrap();
        let domain = topic.split('/').nth(1).unwrap();
        assert!(matches!(domain, "binary_sensor" | "sensor"), "{topic}");
        assert!(topic.ends_with("/config"), "{topic}");
        let obj = v.as_object().unwrap();
        for key in obj.keys() {
            let ok = ENTITY_KEYS.contains(&key.as_str())
                || (domain == "sensor" && SENSOR_ONLY_KEYS.contains(&key.as_str()));
            assert!(ok, "{topic}: undocumented key {key}");
        }
        assert!(!obj.contains_key("object_id"), "object_id is deprecated");
        assert!(
            v["state_topic"].is_string(),
            "{topic}: state_topic required"
        );
        let id = v["default_entity_id"].as_str().unwrap();
        assert!(id.starts_with(&format!("{domain}.")), "{id}");
        assert!(id[domain.len() + 1..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'));
        assert!(v["unique_id"].is_string());
        for key in v["device"].as_object().unwrap().keys() {
            assert!(DEVICE_KEYS.contains(&key.as_str()), "device key {key}");
        }
        assert!(!v["device"]["identifiers"].as_array().unwrap().is_empty());
        for key in v["origin"].as_object().unwrap().keys() {
            assert!(ORIGIN_KEYS.contains(&key.as_str()), "origin key {key}");
        }
        assert!(v["origin"]["name"].is_string());
        if let Some(c) = v.get("entity_category") {
            assert!(ENTITY_CATEGORIES.contains(&c.as_str().unwrap()));
        }
        if let Some(c) = v.get("device_class") {
            let classes = if domain == "sensor" {
                SENSOR_CLASSES
            } else {
                BINARY_SENSOR_CLASSES
            };
            assert!(classes.contains(&c.as_str().unwrap()), "{c}");
        }
        if let Some(c) = v.get("state_class") {
            assert!(STATE_CLASSES.contains(&c.as_str().unwrap()));
        }
    }

    #[test]
    fn payloads_follow_the_documented_schema() {
        let topics = Topics::new("home/monitoring");
        let d = Discovery::new("homeassistant", "iotmonitor");
        let (topic, payload) = d.hub(&topics);
        check(&topic, &payload);
        for (topic, payload) in d.device(&topics, "kitchen temp", false) {
            check(&topic, &payload);
        }
        for (topic, payload) in d.device(&topics, "ledbox", true) {
            check(&topic, &payload);
        }
    }

    #[test]
    fn one_home_assistant_device_per_monitored_device() {
        let topics = Topics::new("b");
        let d = Discovery::new("ha", "iotmonitor");
        let (hub_topic, hub) = d.hub(&topics);
        assert_eq!(hub_topic, "ha/binary_sensor/iotmonitor/status/config");
        let hub: Value = serde_json::from_str(&hub).unwrap();
        assert_eq!(hub["device"]["name"], "iotmonitor");
        let configs = d.device(&topics, "device esp.01", false);
        let topics_of: Vec<&str> = configs.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            topics_of,
            [
                "ha/binary_sensor/iotmonitor/device_esp_01/config",
                "ha/sensor/iotmonitor/device_esp_01_last_seen/config",
                "ha/sensor/iotmonitor/device_esp_01_hello_count/config",
            ]
        );
        let v: Vec<Value> = configs
            .iter()
            .map(|(_, p)| serde_json::from_str(p).unwrap())
            .collect();
        for e in &v {
            assert_eq!(e["device"]["name"], "device esp.01");
            assert_eq!(e["device"]["via_device"], hub["device"]["identifiers"][0]);
            assert_eq!(e["availability_topic"], "b/status");
        }
        assert_eq!(v[0]["state_topic"], "b/availability/device esp.01");
        assert_eq!(v[0]["name"], Value::Null, "named after its device");
        assert_eq!(v[1]["device_class"], "timestamp");
        assert_eq!(v[1]["state_topic"], "b/lastseen/device esp.01");
        assert_eq!(v[2]["entity_category"], "diagnostic");
        assert_eq!(v[2]["state_topic"], "b/helloTopicCount/device esp.01");
        let ids: std::collections::HashSet<&str> =
            v.iter().map(|e| e["unique_id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(
            v[0]["default_entity_id"],
            "binary_sensor.iotmonitor_device_esp_01"
        );
    }
}

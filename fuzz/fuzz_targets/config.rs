//! The configuration loader on arbitrary bytes: an error or a config,
//! never a panic; every error names the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match iotmonitor::config::parse(Path::new("fuzz.toml"), text) {
        Ok(loaded) => {
            for d in &loaded.config.devices {
                assert!(!d.watch_topics.is_empty());
                assert!(d.watch_timeout > 0);
            }
        }
        Err(e) => assert!(e.to_string().starts_with("fuzz.toml")),
    }
});

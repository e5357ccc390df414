//! iotmonitor: keeps an MQTT home/IoT system always up.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use log::{error, info, warn};

use iotmonitor::cli::{Cli, Command, HealthArgs};
use iotmonitor::config::{self, Config};
use iotmonitor::daemon::{Daemon, Reload, Signal};
use iotmonitor::health::{self, Target};
use iotmonitor::store::Store;
use iotmonitor::{dump, http, logging, VERSION};

/// EX_CONFIG from sysexits.h: the configuration is wrong.
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let config_path = cli.config_path();
    match cli.command {
        Some(Command::Dump) => return dump::run(&cli.database),
        Some(Command::Health(args)) => return health(&config_path, &args),
        None if cli.check => return check(&config_path),
        None => {}
    }
    info!(
        "iotmonitor {VERSION} starting: config {}, database {}",
        config_path.display(),
        cli.database.display()
    );
    let Some(config) = load_config(&config_path) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    let store = match Store::open(&cli.database) {
        Ok(s) => s,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let agent_logs = cli.agent_logs.clone().unwrap_or_else(|| {
        cli.database
            .parent()
            .unwrap_or(Path::new(""))
            .join("agent-logs")
    });
    match run(config_path, config, store, agent_logs) {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    config_path: PathBuf,
    config: Config,
    store: Store,
    agent_logs: PathBuf,
) -> anyhow::Result<()> {
    let signals = signal_channel(config_path)?;
    // With the embedded broker, the daemon talks to its own listener.
    #[cfg(feature = "broker")]
    let config = match config.broker_listen {
        Some(listen) => {
            let internal = iotmonitor::broker::start(listen)?;
            let mut config = config;
            config.mqtt.server_address = format!("tcp://{internal}");
            config
        }
        None => config,
    };
    init_paho(&config.mqtt);
    let (control_tx, control_rx) = crossbeam_channel::unbounded();
    if let Some(addr) = config.http_bind {
        http::spawn(addr, control_tx)?;
    }
    let daemon = Daemon::new(config, store, agent_logs)?;
    daemon.run(signals, control_rx)?;
    Ok(())
}

/// Tells Paho C, before its first client exists, whether to initialise
/// OpenSSL: only for a TLS broker. By default it does for any client,
/// loading every algorithm, the error strings and OpenSSL's configuration
/// file (about 2 MB of resident memory). Without a TLS broker, OpenSSL is
/// not even loaded (the link loads it for a TLS client, see
/// vendor/paho-mqtt-sys/PATCHES.md).
fn init_paho(mqtt: &config::MqttConfig) {
    let tls = mqtt.uses_tls();
    let mut options = paho_mqtt_sys::MQTTAsync_init_options {
        struct_id: [b'M', b'Q', b'T', b'G'].map(|b| b as std::ffi::c_char),
        struct_version: 0,
        do_openssl_init: i32::from(tls),
    };
    // SAFETY: a valid init structure (version 0, "MQTG"), read during the
    // call only; called before any Paho client is created.
    unsafe { paho_mqtt_sys::MQTTAsync_global_init(&mut options) };
}

/// A thread turning SIGTERM/SIGINT/SIGHUP into messages for the main loop;
/// on SIGHUP it reads the configuration again itself, so that the main
/// loop only applies it.
fn signal_channel(config_path: PathBuf) -> anyhow::Result<crossbeam_channel::Receiver<Signal>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                info!("received signal {sig}");
                let msg = if sig == SIGHUP {
                    Signal::Reload(Box::new(Reload::read(&config_path)))
                } else {
                    Signal::Stop
                };
                if tx.send(msg).is_err() {
                    break;
                }
            }
        })?;
    Ok(rx)
}

/// Loads the configuration, logging warnings; logs the error and returns
/// None when it is invalid.
fn load_config(path: &Path) -> Option<Config> {
    match config::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                warn!("{w}");
            }
            if !cfg!(feature = "tls") && loaded.config.mqtt.uses_tls() {
                error!(
                    "{}: [mqtt] serverAddress {} needs TLS, which this iotmonitor was built without (cargo feature \"tls\"): use a tcp:// broker or a build with TLS",
                    path.display(),
                    loaded.config.mqtt.server_address
                );
                return None;
            }
            warn_if_password_readable(path, &loaded.config);
            Some(loaded.config)
        }
        Err(e) => {
            error!("{e}");
            None
        }
    }
}

fn warn_if_password_readable(path: &Path, config: &Config) {
    use std::os::unix::fs::PermissionsExt;
    if config.mqtt.password.is_none() && config.mqtt.tls.key_password.is_none() {
        return;
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o004 != 0 {
            warn!(
                "{} holds a password and is readable by every user: chmod 600 it",
                path.display()
            );
        }
    }
}

/// `--check`: validate and print a summary (never the password). For a
/// TLS broker, also that OpenSSL can be loaded (it is not linked), as
/// the daemon would stop at start-up without it.
fn check(path: &Path) -> ExitCode {
    let Some(config) = load_config(path) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    if let Err(e) = iotmonitor::link::load_tls(&config.mqtt) {
        error!("{e}");
        return ExitCode::FAILURE;
    }
    println!("{}: configuration is valid", path.display());
    print!("{}", config.summary());
    ExitCode::SUCCESS
}

/// `health`: 0 when the status page answers 200, 1 otherwise (container
/// health checks know no other codes), with one line saying why.
fn health(config_path: &Path, args: &HealthArgs) -> ExitCode {
    let target = match &args.url {
        Some(url) => Target::from_url(url),
        None => match config::load(config_path) {
            Ok(loaded) => loaded
                .config
                .http_bind
                .map(Target::from_bind)
                .ok_or_else(|| {
                    format!(
                        "{} has no [http] bind: no status page to ask (or use --url)",
                        config_path.display()
                    )
                }),
            Err(e) => Err(e.to_string()),
        },
    };
    match target.and_then(|t| health::check(&t)) {
        Ok(reason) => {
            println!("healthy: {reason}");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("unhealthy: {reason}");
            ExitCode::FAILURE
        }
    }
}

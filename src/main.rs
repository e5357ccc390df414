//! iotmonitor: keeps an MQTT home/IoT system always up.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use log::{error, info, warn};

use iotmonitor::config::{self, Config};
use iotmonitor::daemon::{Daemon, Signal};
use iotmonitor::store::Store;
use iotmonitor::{dump, filter, http, VERSION};

/// EX_CONFIG from sysexits.h: the configuration is wrong.
const EXIT_CONFIG: u8 = 78;

/// Watches MQTT devices and agents, alerts when one goes silent, stores and
/// replays device states, and keeps software agents running.
#[derive(Parser, Debug)]
#[command(name = "iotmonitor", version = VERSION, about, long_about = None)]
#[command(subcommand_precedence_over_arg = true)]
struct Cli {
    /// Configuration file (same as --config)
    #[arg(value_name = "CONFIG")]
    config_file: Option<PathBuf>,

    /// Configuration file
    #[arg(short, long, value_name = "PATH", default_value = "config.toml")]
    config: PathBuf,

    /// State database directory (LevelDB)
    #[arg(
        long,
        value_name = "PATH",
        default_value = "iotdb.leveldb",
        global = true
    )]
    database: PathBuf,

    /// Directory of the agents' output logs (<name>.log) [default: agent-logs
    /// beside the database]
    #[arg(long, value_name = "DIR")]
    agent_logs: Option<PathBuf>,

    /// Validate the configuration, print a summary and exit
    #[arg(long)]
    check: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the stored states, one "topic<TAB>payload" line each
    Dump,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Set after RUST_LOG, so they always apply: Paho C formats a trace line
    // for every packet at the level its Rust wrapper derives from the
    // `paho_mqtt_c` target (costing more CPU than everything else together),
    // and Paho's debug output prints the connect options, password included.
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Info)
        .parse_env(env_logger::Env::default())
        .filter_module("paho_mqtt", log::LevelFilter::Info)
        .filter_module("paho_mqtt_c", log::LevelFilter::Warn)
        .format_timestamp_millis()
        .init();
    let config_path = cli.config_file.clone().unwrap_or(cli.config.clone());
    match cli.command {
        Some(Command::Dump) => return dump::run(&cli.database),
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
    mut config: Config,
    store: Store,
    agent_logs: PathBuf,
) -> anyhow::Result<()> {
    let (link_tx, link_rx) = crossbeam_channel::unbounded();
    let signals = signal_channel()?;
    #[cfg(feature = "broker")]
    if let Some(listen) = config.broker_listen {
        let internal = iotmonitor::broker::start(listen)?;
        config.mqtt.server_address = format!("tcp://{internal}");
    }
    init_paho(&config.mqtt.server_address);
    let (control_tx, control_rx) = crossbeam_channel::unbounded();
    if let Some(addr) = config.http_bind {
        http::spawn(addr, control_tx)?;
    }
    let daemon = Daemon::new(config_path, config, store, agent_logs, link_tx)?;
    daemon.run(link_rx, signals, control_rx)?;
    Ok(())
}

/// Tells Paho C, before its first client exists, whether to initialise
/// OpenSSL: only for a TLS broker. By default it does for any client,
/// loading every algorithm, the error strings and OpenSSL's configuration
/// file (about 2 MB of resident memory). OpenSSL 1.1 and later initialise
/// themselves at their first use anyway, so a TLS connection made later
/// (after a reload) still works.
fn init_paho(server_address: &str) {
    let tls = ["ssl://", "mqtts://"]
        .iter()
        .any(|scheme| server_address.starts_with(scheme));
    let mut options = paho_mqtt_sys::MQTTAsync_init_options {
        struct_id: [b'M', b'Q', b'T', b'G'].map(|b| b as std::ffi::c_char),
        struct_version: 0,
        do_openssl_init: i32::from(tls),
    };
    // SAFETY: a valid init structure (version 0, "MQTG"), read during the
    // call only; called before any Paho client is created.
    unsafe { paho_mqtt_sys::MQTTAsync_global_init(&mut options) };
}

/// A thread turning SIGTERM/SIGINT/SIGHUP into messages for the main loop.
fn signal_channel() -> anyhow::Result<crossbeam_channel::Receiver<Signal>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let msg = if sig == SIGHUP {
                    Signal::Reload
                } else {
                    Signal::Stop
                };
                info!("received signal {sig}");
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
    if config.mqtt.password.is_none() {
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

/// `--check`: validate and print a summary (never the password).
fn check(path: &Path) -> ExitCode {
    let Some(config) = load_config(path) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    let m = &config.mqtt;
    let agents = config.devices.iter().filter(|d| d.is_agent()).count();
    println!("{}: configuration is valid", path.display());
    println!(
        "broker {} as client id '{}', {}, base topic {}{}",
        m.server_address,
        m.client_id,
        match (&m.user, &m.password) {
            (Some(u), Some(_)) => format!("user '{u}' with a password"),
            (Some(u), None) => format!("user '{u}' without password"),
            (None, _) => "anonymous".to_string(),
        },
        m.base_topic,
        if m.retain_states {
            ", states replayed retained"
        } else {
            ""
        }
    );
    println!(
        "{} devices, {} of them agents",
        config.devices.len(),
        agents
    );
    for d in &config.devices {
        let list =
            |fs: &[filter::Filter]| fs.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ");
        println!(
            "  {} {}: timeout {} s, watch [{}], state [{}], hello {}",
            if d.is_agent() { "agent " } else { "device" },
            d.name,
            d.watch_timeout,
            list(&d.watch_topics),
            list(&d.state_topics),
            d.hello_topic.as_deref().unwrap_or("-"),
        );
    }
    ExitCode::SUCCESS
}

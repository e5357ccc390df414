//! The command line (clap). In the library so that the man page generator
//! (`cargo run --example manpage`) renders the same definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::VERSION;

/// Watches MQTT devices and agents, alerts when one goes silent, stores and
/// replays device states, and keeps software agents running.
#[derive(Parser, Debug)]
#[command(name = "iotmonitor", version = VERSION, about, long_about = None)]
#[command(subcommand_precedence_over_arg = true)]
pub struct Cli {
    /// Configuration file (same as --config)
    #[arg(value_name = "CONFIG")]
    pub config_file: Option<PathBuf>,

    /// Configuration file
    #[arg(
        short,
        long,
        value_name = "PATH",
        default_value = "config.toml",
        global = true
    )]
    pub config: PathBuf,

    /// State database directory (LevelDB)
    #[arg(
        long,
        value_name = "PATH",
        default_value = "iotdb.leveldb",
        global = true
    )]
    pub database: PathBuf,

    /// Directory of the agents' output logs (<name>.log) [default: agent-logs
    /// beside the database]
    #[arg(long, value_name = "DIR")]
    pub agent_logs: Option<PathBuf>,

    /// Validate the configuration, print a summary of every section and
    /// exit
    #[arg(long)]
    pub check: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The configuration file: the positional argument, else --config.
    pub fn config_path(&self) -> PathBuf {
        self.config_file.clone().unwrap_or(self.config.clone())
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the stored states, one "topic<TAB>payload" line each
    Dump,
    /// Ask a running daemon's status page whether it is healthy (exit 0) or
    /// not (exit 1), with a one-line reason
    Health(HealthArgs),
}

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// Status page to ask, http://HOST:PORT[/PATH] (default: the [http]
    /// bind address of the configuration, path /healthz)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

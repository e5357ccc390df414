//! Packaging: the man pages cover the command line, the systemd unit keeps
//! its contract and its sandbox, the logrotate snippets rotate logs that
//! agents keep appending to. (scripts/test.sh also checks that the pages
//! are what `cargo run --example manpage` prints, and lints the scripts,
//! the unit and the Dockerfile.)

use std::io::Write;
use std::path::Path;
use std::process::Command;

use clap::CommandFactory;

fn repo(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `--agent-logs` as roff writes it.
fn roff(flag: &str) -> String {
    flag.replace('-', "\\-")
}

fn tool(name: &str) -> Command {
    assert!(
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success()),
        "{name} is not installed: run ./scripts/test.sh, which installs it"
    );
    Command::new(name)
}

#[test]
fn man_pages_cover_every_flag_and_subcommand() {
    let mut cli = iotmonitor::cli::Cli::command().disable_help_subcommand(true);
    cli.build();
    let main = repo("man/iotmonitor.1");
    let mut commands = vec![(main.clone(), &cli)];
    for sub in cli.get_subcommands() {
        let name = sub.get_name();
        assert!(
            main.contains(&roff(&format!("iotmonitor-{name}(1)"))),
            "iotmonitor.1 does not name subcommand {name}"
        );
        commands.push((repo(&format!("man/iotmonitor-{name}.1")), sub));
    }
    for (page, cmd) in commands {
        for arg in cmd.get_arguments() {
            let shown = match (arg.get_long(), arg.get_value_names()) {
                (Some(long), _) => roff(&format!("--{long}")),
                (None, Some(names)) => names[0].to_string(),
                (None, None) => continue,
            };
            assert!(
                page.contains(&shown),
                "{} page lacks {shown}",
                cmd.get_name()
            );
        }
    }
    for section in ["CONFIGURATION", "EXIT STATUS", "ENVIRONMENT", "FILES"] {
        assert!(
            main.lines()
                .any(|l| l == format!(".SH {section}") || l == format!(".SH \"{section}\"")),
            "no {section} section"
        );
    }
    assert!(main.contains(".B RUST_LOG"), "RUST_LOG undocumented");
    for (section, keys) in iotmonitor::config::known_keys() {
        for key in keys {
            assert!(
                main.lines().any(|l| l == format!(".B {key}")),
                "{section}.{key} undocumented"
            );
        }
    }
}

/// The unit with the binary path replaced by one that exists here.
fn unit_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let unit = repo("init/iotmonitor.service").replace(
        "/usr/local/bin/iotmonitor",
        env!("CARGO_BIN_EXE_iotmonitor"),
    );
    std::fs::write(dir.path().join("iotmonitor.service"), unit).unwrap();
    dir
}

#[test]
fn systemd_unit_keeps_its_contract() {
    let unit = repo("init/iotmonitor.service");
    for line in [
        "Type=notify",
        "WatchdogSec=30",
        "KillMode=process",
        "Restart=on-failure",
        "RestartPreventExitStatus=78",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StateDirectory=iotmonitor",
        "StateDirectoryMode=0750",
        "LogsDirectory=iotmonitor",
        "LogsDirectoryMode=0750",
        "ConfigurationDirectory=iotmonitor",
        "ConfigurationDirectoryMode=0750",
        "UMask=0027",
        "EnvironmentFile=-/etc/default/iotmonitor",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing");
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    assert!(
        exec.contains("--agent-logs /var/log/iotmonitor"),
        "agent logs go to the LogsDirectory: {exec}"
    );
}

#[test]
fn systemd_unit_security_exposure_is_at_most_5() {
    let dir = unit_copy();
    let out = tool("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(dir.path().join("iotmonitor.service"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let level: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for iotmonitor.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(level <= 5.0, "exposure {level}:\n{text}");
}

/// An agent keeps its log open in append mode across a rotation: the
/// snippet's copytruncate keeps the old lines and the new ones both.
#[test]
fn logrotate_keeps_what_agents_append() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let id = |flag: &str| {
        let out = Command::new("id").arg(flag).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let snippet = repo("init/iotmonitor-agents.logrotate")
        .replace("/var/log/iotmonitor", &logs.display().to_string())
        .replace(
            "su iotmonitor iotmonitor",
            &format!("su {} {}", id("-un"), id("-gn")),
        );
    let conf = dir.path().join("agents.logrotate");
    std::fs::write(&conf, snippet).unwrap();
    let log = logs.join("ledbox.log");
    let mut agent = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    agent.write_all(b"before rotation\n").unwrap();
    let out = tool("logrotate")
        .args(["--force", "--state"])
        .arg(dir.path().join("state"))
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent.write_all(b"after rotation\n").unwrap();
    let rotated = std::fs::read_to_string(logs.join("ledbox.log.1")).unwrap();
    assert_eq!(rotated, "before rotation\n");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "after rotation\n");
    // The SysV daemon log's snippet parses too.
    let out = tool("logrotate")
        .args(["--debug", "--state"])
        .arg(dir.path().join("state"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("init/iotmonitor-sysv.logrotate"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("error"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

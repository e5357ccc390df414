//! Generates the man pages from the command-line definition (`src/cli.rs`,
//! rendered by clap_mangen) and the hand-written sections beside this file:
//!
//!     cargo run --example manpage -- man
//!
//! writes `man/iotmonitor.1` and one page per subcommand
//! (`iotmonitor-dump.1`, `iotmonitor-health.1`). `scripts/test.sh` checks
//! that the committed pages are what this prints. It refuses to write a page
//! whose configuration section misses a section or key the loader reads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_mangen::Man;

/// The date of the pages' last real change (update it with them). A date
/// it must be: clap_mangen drops an empty one, shifting the footer fields.
const DATE: &str = "2026-11-29";
const DESCRIPTION: &str = include_str!("description.roff");
const MAIN: &str = include_str!("iotmonitor.roff");
/// Hand-written sections closing each subcommand's page.
const SUBCOMMANDS: &[(&str, &str)] = &[
    ("dump", include_str!("dump.roff")),
    ("health", include_str!("health.roff")),
];

fn man(cmd: clap::Command) -> Man {
    let title = cmd
        .get_display_name()
        .unwrap_or(cmd.get_name())
        .to_uppercase();
    // The package version only: a commit in it would change every page at
    // every commit.
    Man::new(cmd)
        .title(title)
        .date(DATE)
        .source(format!("iotmonitor {}", env!("CARGO_PKG_VERSION")))
        .manual("User Commands")
}

/// A part of a page: a section clap_mangen renders, or hand-written roff.
enum Part {
    Generated(fn(&Man, &mut dyn Write) -> std::io::Result<()>),
    Written(&'static str),
}

/// The page made of `parts`. Each section clap_mangen renders starts with
/// the same two-line preamble (a string definition): kept once, on top.
fn page(cmd: &clap::Command, parts: &[Part]) -> std::io::Result<Vec<u8>> {
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let page = man(cmd.clone());
    let mut out: Vec<u8> = Vec::new();
    for part in parts {
        match part {
            Part::Generated(render) => {
                let mut section = Vec::new();
                render(&page, &mut section)?;
                let repeated = !out.is_empty() && section.starts_with(PREAMBLE.as_bytes());
                out.extend_from_slice(&section[if repeated { PREAMBLE.len() } else { 0 }..]);
            }
            Part::Written(roff) => out.extend_from_slice(roff.as_bytes()),
        }
    }
    Ok(out)
}

fn main_page(cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    use Part::*;
    page(
        cmd,
        &[
            Generated(Man::render_title),
            Generated(Man::render_name_section),
            Generated(Man::render_synopsis_section),
            Written(DESCRIPTION),
            Generated(Man::render_options_section),
            Generated(Man::render_subcommands_section),
            Written(MAIN),
        ],
    )
}

fn subcommand_page(cmd: &clap::Command, extra: &'static str) -> std::io::Result<Vec<u8>> {
    use Part::*;
    page(
        cmd,
        &[
            Generated(Man::render_title),
            Generated(Man::render_name_section),
            Generated(Man::render_synopsis_section),
            Generated(Man::render_description_section),
            Generated(Man::render_options_section),
            Written(extra),
        ],
    )
}

/// Sections and keys of the configuration missing from the main page.
fn undocumented() -> Vec<String> {
    let mut missing = Vec::new();
    for (section, keys) in iotmonitor::config::known_keys() {
        let heading = match section.split_once('_') {
            Some((prefix, _)) => format!("[{prefix}_NAME]"),
            None => format!("[{section}]"),
        };
        if !MAIN.contains(&heading) {
            missing.push(format!("section {heading}"));
        }
        for key in keys {
            if !MAIN.lines().any(|l| l == format!(".B {key}")) {
                missing.push(format!("key {section}.{key}"));
            }
        }
    }
    missing
}

fn pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = iotmonitor::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![("iotmonitor.1".to_string(), main_page(&cmd)?)];
    for sub in cmd.get_subcommands() {
        let extra = SUBCOMMANDS
            .iter()
            .find(|(name, _)| *name == sub.get_name())
            .map_or("", |(_, roff)| roff);
        let name = sub.get_display_name().unwrap_or(sub.get_name());
        pages.push((format!("{name}.1"), subcommand_page(sub, extra)?));
    }
    Ok(pages)
}

fn write(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (file, page) in pages()? {
        std::fs::write(dir.join(file), page)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let missing = undocumented();
    if !missing.is_empty() {
        eprintln!(
            "examples/manpage/iotmonitor.roff does not document: {}",
            missing.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let dir: PathBuf = match std::env::args_os().nth(1) {
        Some(dir) => dir.into(),
        None => {
            eprintln!("usage: cargo run --example manpage -- DIR (the pages' directory, man/)");
            return ExitCode::from(2);
        }
    };
    match write(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write the man pages to {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

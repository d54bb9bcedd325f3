//! The start-up toolchain report: each toolchain found on this machine is run inside the
//! chosen tier, so the log, `/healthz` and every check-run summary say which ones work there,
//! and which do not and why (instead of a session finding out with "cargo: Permission denied").

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{Sandbox, SandboxCommand, Toolchains};

/// How one toolchain fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum ToolchainState {
    /// It ran; the first line of its version output.
    Works { version: String },
    /// Installed on the host, but it did not run in the sandbox.
    Broken { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolchainCheck {
    pub name: String,
    #[serde(flatten)]
    pub state: ToolchainState,
}

/// (name, executable looked up on the sandbox's `PATH`, script that proves it works).
const PROBES: &[(&str, &str, &str)] = &[
    ("cargo", "cargo", "cargo --version"),
    ("rustc", "rustc", "rustc --version"),
    (
        "python3",
        "python3",
        "python3 --version && python3 -m venv --without-pip \"$TMPDIR/venv-check\" && echo venv ok && python3 -m pip --version",
    ),
    ("node", "node", "node --version"),
    ("npm", "npm", "npm --version"),
    ("npx", "npx", "npx --version"),
    ("go", "go", "go version"),
    ("java", "java", "java -version 2>&1"),
    ("mvn", "mvn", "mvn --version"),
];

/// Runs every toolchain found on the sandbox's `PATH` (as seen from the host) in `sandbox`.
pub async fn check_all(sandbox: &dyn Sandbox, toolchains: &Toolchains) -> Vec<ToolchainCheck> {
    let path = toolchains.path_var();
    let found = PROBES
        .iter()
        .filter(|(_, exe, _)| path.split(':').any(|dir| Path::new(dir).join(exe).exists()));
    let checks = found.map(|(name, _, script)| check_one(sandbox, name, script));
    futures::future::join_all(checks).await
}

/// [`check_all`] from synchronous code (the start-up probe), inside or outside a runtime.
pub fn check_all_blocking(sandbox: &dyn Sandbox, toolchains: &Toolchains) -> Vec<ToolchainCheck> {
    std::thread::scope(|s| {
        s.spawn(|| {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(check_all(sandbox, toolchains)),
                Err(err) => {
                    tracing::warn!(%err, "could not check the toolchains");
                    Vec::new()
                }
            }
        })
        .join()
        .unwrap_or_default()
    })
}

async fn check_one(sandbox: &dyn Sandbox, name: &str, script: &str) -> ToolchainCheck {
    let state = match tempfile::tempdir().and_then(|d| Ok((d.path().canonicalize()?, d))) {
        Err(err) => ToolchainState::Broken {
            reason: format!("no work dir for the check: {err}"),
        },
        Ok((path, _dir)) => {
            let mut cmd = SandboxCommand::new(script, path);
            cmd.limits.timeout = Duration::from_secs(60);
            match sandbox.run(cmd, None, CancellationToken::new()).await {
                Err(err) => ToolchainState::Broken {
                    reason: err.to_string(),
                },
                Ok(out) if out.success() => ToolchainState::Works {
                    version: version_of(&out.output.text()),
                },
                Ok(out) => ToolchainState::Broken {
                    reason: format!(
                        "{} ({})",
                        last_line(&out.output.text()),
                        match out.exit_code {
                            Some(code) => format!("exit {code}"),
                            None => "killed".to_owned(),
                        }
                    ),
                },
            }
        }
    };
    ToolchainCheck {
        name: name.to_owned(),
        state,
    }
}

/// `text` without terminal escape sequences (Maven colours its version line) or other control
/// characters: the report goes into logs, JSON and check runs. Ten lines, so no crate for it.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final byte in @..~; any other escape drops one character.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// The version lines, joined (python3 reports itself and its pip).
fn version_of(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "venv ok")
        .take(2)
        .collect();
    bounded(&lines.join("; "), 100)
}

fn last_line(output: &str) -> String {
    let line = output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output");
    bounded(line.trim(), 160)
}

fn bounded(s: &str, max: usize) -> String {
    let s = &printable(s);
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// One sentence for `describe()`: which toolchains work in this tier, which do not and why.
pub fn summary(checks: &[ToolchainCheck]) -> String {
    if checks.is_empty() {
        return String::new();
    }
    let works: Vec<&str> = checks
        .iter()
        .filter(|c| matches!(c.state, ToolchainState::Works { .. }))
        .map(|c| c.name.as_str())
        .collect();
    let broken: Vec<String> = checks
        .iter()
        .filter_map(|c| match &c.state {
            ToolchainState::Broken { reason } => Some(format!("{} ({reason})", c.name)),
            ToolchainState::Works { .. } => None,
        })
        .collect();
    let mut s = String::from("Toolchains that run in the sandbox: ");
    s.push_str(if works.is_empty() { "none" } else { "" });
    s.push_str(&works.join(", "));
    s.push('.');
    if !broken.is_empty() {
        s.push_str(" Installed but NOT runnable in the sandbox: ");
        s.push_str(&broken.join("; "));
        s.push('.');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_what_works_and_what_does_not() {
        let checks = vec![
            ToolchainCheck {
                name: "cargo".into(),
                state: ToolchainState::Works {
                    version: "cargo 1.95.0".into(),
                },
            },
            ToolchainCheck {
                name: "node".into(),
                state: ToolchainState::Broken {
                    reason: "/bin/sh: 1: node: Permission denied (exit 127)".into(),
                },
            },
        ];
        assert_eq!(
            summary(&checks),
            "Toolchains that run in the sandbox: cargo. Installed but NOT runnable in the sandbox: node (/bin/sh: 1: node: Permission denied (exit 127))."
        );
        assert_eq!(summary(&[]), "");
        assert_eq!(
            version_of("Python 3.11.7\nvenv ok\npip 24.0 from x\n"),
            "Python 3.11.7; pip 24.0 from x"
        );
        assert_eq!(
            version_of("\u{1b}[1mApache Maven 3.8.7\u{1b}[m\nMaven home: /usr/share/maven\n"),
            "Apache Maven 3.8.7; Maven home: /usr/share/maven"
        );
    }
}

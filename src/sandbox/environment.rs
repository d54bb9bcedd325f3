//! Telling "the command ran and failed" from "the command could not run here".
//!
//! Only the first is a reproduction. The second (the shell could not find or execute the
//! program, the test runner is not installed, dependencies were never fetched, the command
//! wanted the network) is an environment failure: the session stops without asking the model,
//! quoting the output and saying what to change. The classifier is deliberately narrow: exit
//! 126/127 (the shell's own codes for "not executable" and "not found"), and output lines in
//! the exact shapes shells, Python, npm, cargo and rustup print when the *tool* is missing — not
//! any mention of "not found", which real test failures print all the time.

use std::sync::LazyLock;

use regex::Regex;

use super::RunOutcome;

/// What kept a command from running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentFailure {
    /// A program is not on the sandbox's `PATH` (or not installed at all).
    Missing { what: String },
    /// A program exists but the sandbox uid may not execute it (or its interpreter).
    NotExecutable { what: String },
    /// The test runner or the project's dependencies are not installed in the sandbox.
    NotInstalled { what: String },
    /// The command needed the network, which repro, test and verify runs do not have.
    NeedsNetwork,
}

impl EnvironmentFailure {
    /// One sentence: what went wrong.
    pub fn explain(&self) -> String {
        match self {
            Self::Missing { what } => format!("`{what}` was not found in the sandbox"),
            Self::NotExecutable { what } => {
                format!("`{what}` exists but cannot be executed in the sandbox (permission denied)")
            }
            Self::NotInstalled { what } => format!("{what} is not installed in the sandbox"),
            Self::NeedsNetwork => {
                "the command tried to use the network, which reproduction runs do not have".into()
            }
        }
    }

    /// What the maintainer (or operator) can change.
    pub fn remedy(&self) -> String {
        let setup = "in `setup_command` in .github/patchpilot.yml (it runs first, with network), for example `python3 -m venv .venv && .venv/bin/pip install -e . pytest`, `npm ci` or `cargo fetch --locked`";
        match self {
            Self::Missing { .. } | Self::NotInstalled { .. } => format!(
                "Install what the command needs {setup}, or use a command that exists in the sandbox (the check run lists the toolchains that run there), then comment `/patchpilot retry`."
            ),
            Self::NotExecutable { .. } => "The toolchain is installed on the PatchPilot server but the sandbox cannot execute it: ask the operator to check the start-up toolchain report (`GET /healthz`) and make it reachable (see the README, \"Sandbox\"). Then comment `/patchpilot retry`.".into(),
            Self::NeedsNetwork => format!(
                "Download what the command needs {setup}; the caches it fills are kept for later runs. Then comment `/patchpilot retry`."
            ),
        }
    }
}

/// Builds the failure from what the pattern captured (the program's name, usually).
type Make = fn(&str) -> EnvironmentFailure;

/// Shapes of "the tool itself is missing" (checked on the output's last lines).
static PATTERNS: LazyLock<Vec<(Regex, Make)>> = LazyLock::new(|| {
    let missing = |w: &str| EnvironmentFailure::Missing { what: w.to_owned() };
    let denied = |w: &str| EnvironmentFailure::NotExecutable { what: w.to_owned() };
    let runner = |w: &str| EnvironmentFailure::NotInstalled {
        what: format!("the test runner `{w}`"),
    };
    let script = |w: &str| EnvironmentFailure::NotInstalled {
        what: format!("the npm script `{w}`"),
    };
    let subcommand = |w: &str| EnvironmentFailure::NotInstalled {
        what: format!("the cargo subcommand `{w}`"),
    };
    let deps = |_: &str| EnvironmentFailure::NotInstalled {
        what: "the project's dependencies (they were never fetched)".to_owned(),
    };
    let net = |_: &str| EnvironmentFailure::NeedsNetwork;
    let table: Vec<(&str, Make)> = vec![
        // dash: `/bin/sh: 1: cargo: not found`; bash: `bash: line 1: cargo: command not found`.
        (
            r"(?m)^\S*sh: (?:\d+: |line \d+: )?([^:\n]+): (?:not found|command not found)\s*$",
            missing,
        ),
        (
            r"(?m)^\S*sh: (?:\d+: |line \d+: )?([^:\n]+): Permission denied\s*$",
            denied,
        ),
        (
            r"(?m)^\S*sh: (?:\d+: |line \d+: )?(?:exec: )?([^:\n]+): (?:cannot execute|Exec format error)",
            denied,
        ),
        // `/usr/bin/env: 'python': No such file or directory` (a shebang's interpreter).
        (
            r"(?m)^/usr/bin/env: ['‘]?([^'’:\n]+)['’]?: No such file or directory",
            missing,
        ),
        // `python3: No module named pytest` / `ModuleNotFoundError: No module named 'pytest'`.
        (
            r"(?m)No module named ['‘]?(pytest|_pytest|tox|nox|nose2?|pip|venv|ensurepip)['’]?\s*$",
            runner,
        ),
        (
            r"(?m)^npm (?:ERR!|error) [Mm]issing script: ['‘]?([^'’\s]+)",
            script,
        ),
        (
            r"(?m)^error: no such (?:sub)?command: [`']?([^`'\s]+)",
            subcommand,
        ),
        (r"(?m)^error: could not choose a version of (\S+)", missing),
        (r"(?m)^error: toolchain '([^']+)' is not installed", missing),
        // cargo offline with dependencies never downloaded.
        (
            r"(?m)attempting to make an HTTP request, but --offline was specified|no matching package named .* found\s*$|failed to download .* --offline|failed to load source for dependency",
            deps,
        ),
        (r"(?m)^error: failed to get `[^`]+` as a dependency", deps),
        (
            r"(?m)getaddrinfo (?:ENOTFOUND|EAI_AGAIN)|Temporary failure in name resolution|Could not resolve host|Network is unreachable|dial tcp: lookup",
            net,
        ),
    ];
    table
        .into_iter()
        .map(|(re, make)| (Regex::new(re).expect("valid environment pattern"), make))
        .collect()
});

/// How much of the end of the output the classifier reads: tools print their "not found" last.
const TAIL_BYTES: usize = 8 * 1024;

/// `Some` when `outcome` shows the command (or its runner) could not run in the sandbox.
pub fn environment_failure(outcome: &RunOutcome) -> Option<EnvironmentFailure> {
    if outcome.success() || outcome.timed_out || outcome.cancelled {
        return None;
    }
    classify(outcome.exit_code, &outcome.output.tail(TAIL_BYTES))
}

/// The pure part of [`environment_failure`]: an exit code and the output's tail.
pub fn classify(exit_code: Option<i32>, tail: &str) -> Option<EnvironmentFailure> {
    for (re, make) in PATTERNS.iter() {
        if let Some(m) = re.captures(tail) {
            let what = m.get(1).map_or("", |g| g.as_str().trim());
            return Some(make(what));
        }
    }
    match exit_code {
        Some(127) => Some(EnvironmentFailure::Missing {
            what: "a program the command runs".to_owned(),
        }),
        Some(126) => Some(EnvironmentFailure::NotExecutable {
            what: "a program the command runs".to_owned(),
        }),
        _ => None,
    }
}

static MISSING_PYTHON_MODULE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^(?:E\s+)?ModuleNotFoundError: No module named '([A-Za-z_][A-Za-z0-9_]*)[A-Za-z0-9_.]*'")
        .expect("valid module pattern")
});

/// A missing *dependency*: Python could not import top-level module `name`, and the work tree
/// has no such module (`name.py` or `name/`, at the top or under `src/`), so it is not the
/// project's own code failing but a package set-up never installed.
pub fn missing_python_dependency(
    outcome: &RunOutcome,
    work_dir: &std::path::Path,
) -> Option<EnvironmentFailure> {
    if outcome.success() || outcome.timed_out || outcome.cancelled {
        return None;
    }
    let tail = outcome.output.tail(TAIL_BYTES);
    let name = MISSING_PYTHON_MODULE
        .captures(&tail)?
        .get(1)?
        .as_str()
        .to_owned();
    let own = ["", "src"].iter().any(|dir| {
        let base = work_dir.join(dir);
        base.join(format!("{name}.py")).exists() || base.join(&name).is_dir()
    });
    (!own).then(|| EnvironmentFailure::NotInstalled {
        what: format!("the Python package `{name}` (a dependency, not part of the repository)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(exit: i32, out: &str) -> Option<EnvironmentFailure> {
        classify(Some(exit), out)
    }

    #[test]
    fn shells_that_cannot_find_or_execute_a_program() {
        assert_eq!(
            kind(127, "/bin/sh: 1: cargo: Permission denied\n"),
            Some(EnvironmentFailure::NotExecutable {
                what: "cargo".into()
            })
        );
        assert_eq!(
            kind(
                127,
                "/bin/sh: 1: some-tool-that-does-not-exist: not found\n"
            ),
            Some(EnvironmentFailure::Missing {
                what: "some-tool-that-does-not-exist".into()
            })
        );
        assert_eq!(
            kind(127, "bash: line 1: pytest: command not found\n"),
            Some(EnvironmentFailure::Missing {
                what: "pytest".into()
            })
        );
        assert_eq!(
            kind(127, "/usr/bin/env: ‘python’: No such file or directory\n"),
            Some(EnvironmentFailure::Missing {
                what: "python".into()
            })
        );
        // Exit 127 with no recognisable line is still "could not start".
        assert!(matches!(
            kind(127, ""),
            Some(EnvironmentFailure::Missing { .. })
        ));
        assert!(matches!(
            kind(126, "x"),
            Some(EnvironmentFailure::NotExecutable { .. })
        ));
    }

    #[test]
    fn missing_runners_scripts_and_dependencies() {
        assert_eq!(
            kind(
                1,
                "/root/.pyenv/versions/3.11.7/bin/python3: No module named pytest\n"
            ),
            Some(EnvironmentFailure::NotInstalled {
                what: "the test runner `pytest`".into()
            })
        );
        assert!(matches!(
            kind(1, "npm error Missing script: \"test\"\nnpm error\n"),
            Some(EnvironmentFailure::NotInstalled { .. })
        ));
        assert!(matches!(
            kind(1, "npm ERR! missing script: test\n"),
            Some(EnvironmentFailure::NotInstalled { .. })
        ));
        assert!(matches!(
            kind(101, "error: no such command: `nextest`\n"),
            Some(EnvironmentFailure::NotInstalled { .. })
        ));
        assert!(matches!(
            kind(
                101,
                "error: failed to get `cfg-if` as a dependency of package `x v0.1.0`\n\nCaused by:\n  attempting to make an HTTP request, but --offline was specified\n"
            ),
            Some(EnvironmentFailure::NotInstalled { .. })
        ));
        assert_eq!(
            kind(
                1,
                "npm error request to https://registry.npmjs.org/x failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org\n"
            ),
            Some(EnvironmentFailure::NeedsNetwork)
        );
    }

    #[test]
    fn real_test_failures_are_not_environment_failures() {
        let pytest = "F.\n=== FAILURES ===\nE   FileNotFoundError: [Errno 2] No such file or directory: 'data.csv'\nE   KeyError: 'not found'\nFAILED test_calc.py::test_x - ZeroDivisionError\n1 failed, 1 passed\n";
        assert_eq!(kind(1, pytest), None);
        // The project's own module failing to import is a real bug, not a missing runner.
        assert_eq!(
            kind(1, "ModuleNotFoundError: No module named 'calc.helpers'\n"),
            None
        );
        let cargo = "test tests::clamps_high_values ... FAILED\nthread 'x' panicked: command not found in table\ntest result: FAILED. 0 passed; 1 failed\nerror: test failed, to rerun pass `--lib`\n";
        assert_eq!(kind(101, cargo), None);
        let jest = "expect(received).toBe(expected)\nError: user not found\nTests: 1 failed\n";
        assert_eq!(kind(1, jest), None);
        assert_eq!(kind(2, "make: *** [Makefile:3: test] Error 1\n"), None);
    }
}

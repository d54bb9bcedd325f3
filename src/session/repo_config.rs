//! Per-repository settings: `.github/patchpilot.yml`, read from the default branch.
//!
//! Unknown fields are rejected (`deny_unknown_fields`) so a typo never silently falls back
//! to a default; every error names the field and the fields accepted at that level, in
//! words a maintainer can act on (`report::messages::invalid_repo_config`). A missing or
//! empty file means all defaults.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Where the file lives in the repository.
pub const REPO_CONFIG_PATH: &str = ".github/patchpilot.yml";

/// Fields accepted at the top level.
pub const TOP_LEVEL_FIELDS: &[&str] = &[
    "label",
    "test_command",
    "setup_command",
    "max_attempts",
    "draft",
    "protected_paths",
    "model",
    "limits",
    "env",
    "instructions_file",
    "max_ci_fixes",
];

/// Fields accepted under `limits`.
pub const LIMIT_FIELDS: &[&str] = &[
    "timeout_seconds",
    "memory_mb",
    "max_processes",
    "max_output_kb",
];

/// The most attempts a repository may ask for (each costs model tokens and sandbox time).
pub const MAX_ATTEMPTS_CAP: u32 = 10;

/// The most CI fix-up rounds a repository may allow per pull request.
pub const MAX_CI_FIXES_CAP: u32 = 10;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RepoConfig {
    /// The label that starts a session.
    pub label: String,
    /// Run after the repro command to check nothing else broke; also the fallback repro.
    pub test_command: Option<String>,
    /// Run once after cloning (with network) to install dependencies.
    pub setup_command: Option<String>,
    /// Patch/verify rounds before giving up.
    pub max_attempts: u32,
    /// Open the pull request as a draft.
    pub draft: bool,
    /// More paths the bot may never edit (`.gitignore` syntax). They add to the defaults
    /// (`agent::edits::safety::DEFAULT_PROTECTED_PATHS`: `.github/`, CI configs, hooks, ...),
    /// which are always enforced, as is `.git`.
    pub protected_paths: Vec<String>,
    /// Overrides PATCHPILOT_MODEL for this repository (same provider, same session budget).
    pub model: Option<String>,
    pub limits: Limits,
    /// Extra environment for setup/repro/test commands (never secrets: they run untrusted code).
    pub env: BTreeMap<String, String>,
    /// A file in the repository with extra instructions for the model.
    pub instructions_file: Option<String>,
    /// Fix-up rounds PatchPilot may run per pull request when CI fails on its branch (one per
    /// head commit at most); `0` turns them off.
    pub max_ci_fixes: u32,
}

impl Default for RepoConfig {
    fn default() -> Self {
        Self {
            label: "patchpilot".into(),
            test_command: None,
            setup_command: None,
            max_attempts: 3,
            draft: false,
            protected_paths: Vec::new(),
            model: None,
            limits: Limits::default(),
            env: BTreeMap::new(),
            instructions_file: None,
            max_ci_fixes: 2,
        }
    }
}

/// Sandbox limits for each command.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub timeout_seconds: u64,
    pub memory_mb: u64,
    pub max_processes: u32,
    pub max_output_kb: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout_seconds: 600,
            memory_mb: 4096,
            max_processes: 512,
            max_output_kb: 1024,
        }
    }
}

/// Why the file was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoConfigError {
    /// Dotted path of the offending field (`limits.memory_mb`), when known.
    pub field: Option<String>,
    pub problem: String,
    /// The fields accepted where the error is.
    pub accepted: &'static [&'static str],
}

impl std::fmt::Display for RepoConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{REPO_CONFIG_PATH}: ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.problem)
    }
}

impl std::error::Error for RepoConfigError {}

impl RepoConfigError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        let field = field.into();
        let accepted = if field.starts_with("limits") {
            LIMIT_FIELDS
        } else {
            TOP_LEVEL_FIELDS
        };
        Self {
            field: (!field.is_empty()).then_some(field),
            problem: problem.into(),
            accepted,
        }
    }
}

impl RepoConfig {
    /// Parses the file's text; `None` (file absent) and empty files give the defaults.
    pub fn parse(text: Option<&str>) -> Result<RepoConfig, RepoConfigError> {
        let Some(text) = text else {
            return Ok(RepoConfig::default());
        };
        let is_empty = serde_norway::from_str::<serde_norway::Value>(text)
            .map(|v| v.is_null())
            .unwrap_or(false);
        if is_empty {
            return Ok(RepoConfig::default());
        }
        let de = serde_norway::Deserializer::from_str(text);
        let config: RepoConfig = serde_path_to_error::deserialize(de).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner().to_string();
            parse_error(if path == "." { String::new() } else { path }, &inner)
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), RepoConfigError> {
        if self.label.trim().is_empty() {
            return Err(RepoConfigError::new("label", "must not be empty"));
        }
        if !(1..=MAX_ATTEMPTS_CAP).contains(&self.max_attempts) {
            return Err(RepoConfigError::new(
                "max_attempts",
                format!(
                    "must be between 1 and {MAX_ATTEMPTS_CAP}, not {}",
                    self.max_attempts
                ),
            ));
        }
        if self.max_ci_fixes > MAX_CI_FIXES_CAP {
            return Err(RepoConfigError::new(
                "max_ci_fixes",
                format!(
                    "must be between 0 and {MAX_CI_FIXES_CAP}, not {}",
                    self.max_ci_fixes
                ),
            ));
        }
        for (name, command) in [
            ("test_command", &self.test_command),
            ("setup_command", &self.setup_command),
        ] {
            if command.as_deref().is_some_and(|c| c.trim().is_empty()) {
                return Err(RepoConfigError::new(name, "must not be empty when set"));
            }
        }
        if self.model.as_deref().is_some_and(|m| {
            m.trim().is_empty()
                || m.len() > 200
                || m.chars().any(|c| c.is_whitespace() || c.is_control())
        }) {
            return Err(RepoConfigError::new(
                "model",
                "must be a model name of at most 200 characters, without spaces",
            ));
        }
        if self.protected_paths.iter().any(|p| p.trim().is_empty()) {
            return Err(RepoConfigError::new(
                "protected_paths",
                "entries must not be empty",
            ));
        }
        if let Some(name) = self.env.keys().find(|k| !is_env_name(k)) {
            return Err(RepoConfigError::new(
                format!("env.{name}"),
                "is not a valid variable name (letters, digits and `_`, not starting with a digit)",
            ));
        }
        if let Some(file) = &self.instructions_file
            && (file.starts_with('/') || file.split('/').any(|part| part == ".."))
        {
            return Err(RepoConfigError::new(
                "instructions_file",
                "must be a path inside the repository",
            ));
        }
        let l = &self.limits;
        for (name, zero) in [
            ("limits.timeout_seconds", l.timeout_seconds == 0),
            ("limits.memory_mb", l.memory_mb == 0),
            ("limits.max_processes", l.max_processes == 0),
            ("limits.max_output_kb", l.max_output_kb == 0),
        ] {
            if zero {
                return Err(RepoConfigError::new(name, "must be greater than 0"));
            }
        }
        Ok(())
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Turns serde's message into a maintainer-facing problem, keeping the field path.
fn parse_error(path: String, message: &str) -> RepoConfigError {
    // serde: "unknown field `lable`, expected one of `label`, ..." (the list is shown separately).
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        let parent = path
            .rsplit_once('.')
            .map(|(p, _)| p.to_owned())
            .unwrap_or_default();
        let field = if path.is_empty() || path == name {
            name.to_owned()
        } else if path.ends_with(name) {
            path.clone()
        } else {
            format!("{parent}.{name}")
        };
        return RepoConfigError::new(field, "is not a known setting");
    }
    // Drop serde_norway's " at line X column Y" position noise only when it is the whole tail.
    let problem = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    RepoConfigError::new(path, problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(yaml: &str) -> RepoConfigError {
        RepoConfig::parse(Some(yaml)).unwrap_err()
    }

    #[test]
    fn absent_or_empty_file_gives_defaults() {
        assert_eq!(RepoConfig::parse(None).unwrap(), RepoConfig::default());
        assert_eq!(RepoConfig::parse(Some("")).unwrap(), RepoConfig::default());
        assert_eq!(
            RepoConfig::parse(Some("# only a comment\n")).unwrap(),
            RepoConfig::default()
        );
        let d = RepoConfig::default();
        assert_eq!(
            (d.label.as_str(), d.max_attempts, d.draft),
            ("patchpilot", 3, false)
        );
    }

    #[test]
    fn every_field_parses() {
        let yaml = "label: fix-me\ntest_command: cargo test\nsetup_command: cargo fetch\n\
                    max_attempts: 5\ndraft: true\nprotected_paths: [\"src/generated/**\"]\n\
                    model: claude-sonnet\nlimits:\n  timeout_seconds: 120\n  memory_mb: 512\n\
                    env:\n  RUST_BACKTRACE: \"1\"\ninstructions_file: docs/BOT.md\n";
        let c = RepoConfig::parse(Some(yaml)).unwrap();
        assert_eq!(c.label, "fix-me");
        assert_eq!(c.test_command.as_deref(), Some("cargo test"));
        assert_eq!(c.setup_command.as_deref(), Some("cargo fetch"));
        assert_eq!(c.max_attempts, 5);
        assert!(c.draft);
        assert_eq!(c.protected_paths, ["src/generated/**"]);
        assert_eq!(c.model.as_deref(), Some("claude-sonnet"));
        assert_eq!(
            c.limits,
            Limits {
                timeout_seconds: 120,
                memory_mb: 512,
                ..Limits::default()
            }
        );
        assert_eq!(c.env["RUST_BACKTRACE"], "1");
        assert_eq!(c.instructions_file.as_deref(), Some("docs/BOT.md"));
    }

    #[test]
    fn unknown_top_level_field_is_named_with_the_accepted_ones() {
        let e = err("lable: bug\n");
        assert_eq!(e.field.as_deref(), Some("lable"));
        assert_eq!(e.accepted, TOP_LEVEL_FIELDS);
        assert_eq!(
            e.to_string(),
            ".github/patchpilot.yml: field `lable`: is not a known setting"
        );
    }

    #[test]
    fn unknown_nested_field_is_named_with_its_path() {
        let e = err("limits:\n  memory: 12\n");
        assert_eq!(e.field.as_deref(), Some("limits.memory"));
        assert_eq!(e.accepted, LIMIT_FIELDS);
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = err("max_attempts: many\n");
        assert_eq!(e.field.as_deref(), Some("max_attempts"));
        assert!(e.problem.contains("invalid type"), "{}", e.problem);
        let e = err("draft: 3\n");
        assert_eq!(e.field.as_deref(), Some("draft"));
        let e = err("limits:\n  timeout_seconds: -1\n");
        assert_eq!(e.field.as_deref(), Some("limits.timeout_seconds"));
    }

    #[test]
    fn not_a_mapping_is_rejected() {
        let e = err("- a\n- b\n");
        assert_eq!(e.field, None);
        assert_eq!(e.accepted, TOP_LEVEL_FIELDS);
    }

    #[test]
    fn values_are_validated() {
        assert_eq!(
            err("max_attempts: 0\n").field.as_deref(),
            Some("max_attempts")
        );
        assert_eq!(
            err("max_attempts: 11\n").problem,
            "must be between 1 and 10, not 11"
        );
        assert_eq!(
            err("max_ci_fixes: 11\n").problem,
            "must be between 0 and 10, not 11"
        );
        assert_eq!(
            RepoConfig::parse(Some("max_ci_fixes: 0\n"))
                .unwrap()
                .max_ci_fixes,
            0
        );
        assert_eq!(err("label: \"  \"\n").field.as_deref(), Some("label"));
        assert_eq!(
            err("test_command: \"\"\n").field.as_deref(),
            Some("test_command")
        );
        assert_eq!(
            err("protected_paths: [\"\"]\n").field.as_deref(),
            Some("protected_paths")
        );
        assert_eq!(err("env:\n  1BAD: x\n").field.as_deref(), Some("env.1BAD"));
        assert_eq!(
            err("instructions_file: ../secrets\n").field.as_deref(),
            Some("instructions_file")
        );
        assert_eq!(
            err("instructions_file: /etc/passwd\n").field.as_deref(),
            Some("instructions_file")
        );
        assert_eq!(
            err("limits:\n  memory_mb: 0\n").field.as_deref(),
            Some("limits.memory_mb")
        );
    }
}

//! The command line of `patchpilot serve`, assembled from the settings each module defines
//! next to what it configures, from flags or the environment, validated once at start-up.
//!
//! Every option has an environment variable (the names in DESIGN.md). Secrets are
//! `SecretString`s so they cannot be printed by accident. Features whose settings are missing
//! are switched off with one log line each; invalid settings stop start-up with one sentence.
//!
//! Blank means unset: clap keeps `VAR=` (what docker-compose's `${VAR}` gives for a missing
//! variable) as `Some("")`, which once switched the API token "on" with an empty value. So the
//! command line is parsed through [`parse_cli`], which drops the environment binding of every
//! argument whose variable is empty or whitespace: that setting then gets its default, or
//! stays `None`, exactly as if the variable were absent. This covers every setting of every
//! subcommand, including those defined in other modules, without each having to remember.

use std::ffi::{OsStr, OsString};

/// Parses the process's command line and environment into `T`, with blank environment
/// variables treated as unset; exits with clap's message on invalid input.
pub fn parse_cli<T: clap::Parser>() -> T {
    let mut command = blank_env_is_unset(T::command(), &|name| std::env::var_os(name));
    let mut matches = command.clone().get_matches();
    T::from_arg_matches_mut(&mut matches).unwrap_or_else(|err| err.format(&mut command).exit())
}

/// `command` (and its subcommands) with the environment binding removed from every argument
/// whose variable `lookup` finds blank.
pub fn blank_env_is_unset(
    command: clap::Command,
    lookup: &dyn Fn(&OsStr) -> Option<OsString>,
) -> clap::Command {
    let is_blank =
        |name: &OsStr| lookup(name).is_some_and(|value| value.to_string_lossy().trim().is_empty());
    let blank: Vec<clap::Id> = command
        .get_arguments()
        .filter(|arg| arg.get_env().is_some_and(is_blank))
        .map(|arg| arg.get_id().clone())
        .collect();
    let command = blank.into_iter().fold(command, |command, id| {
        command.mut_arg(id, |arg| arg.env(None::<&str>))
    });
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    subcommands.into_iter().fold(command, |command, name| {
        command.mut_subcommand(name, |sub| blank_env_is_unset(sub, lookup))
    })
}

/// Everything `patchpilot serve` takes.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: crate::store::DatabaseArgs,
    #[command(flatten)]
    pub server: crate::server::ServerArgs,
    #[command(flatten)]
    pub worker: crate::worker::WorkerArgs,
    #[command(flatten)]
    pub sandbox: crate::sandbox::SandboxArgs,
    #[command(flatten)]
    pub github: crate::github::auth::GitHubArgs,
    #[command(flatten)]
    pub model: crate::llm::ModelArgs,
    #[command(flatten)]
    pub exa: crate::agent::exa::ExaArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn env_names(command: &clap::Command) -> Vec<String> {
        command
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|name| name.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_blank_setting_loses_its_environment_binding() {
        let all = env_names(&Cli::command());
        for name in [
            "PATCHPILOT_API_TOKEN",
            "GITHUB_WEBHOOK_SECRET",
            "PATCHPILOT_PUBLIC_URL",
            "GITHUB_APP_ID",
            "GITHUB_PRIVATE_KEY",
            "GITHUB_PRIVATE_KEY_PATH",
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "PATCHPILOT_MODEL",
            "EXA_API_KEY",
        ] {
            assert!(all.iter().any(|n| n == name), "{name} is not a setting");
        }
        let blank = |_: &OsStr| Some(OsString::from(" \t"));
        assert!(env_names(&blank_env_is_unset(Cli::command(), &blank)).is_empty());
        let set = |_: &OsStr| Some(OsString::from("value"));
        assert_eq!(env_names(&blank_env_is_unset(Cli::command(), &set)), all);
        let absent = |_: &OsStr| None;
        assert_eq!(env_names(&blank_env_is_unset(Cli::command(), &absent)), all);
    }

    #[test]
    fn blank_detection_walks_subcommands() {
        let command = clap::Command::new("top").subcommand(
            clap::Command::new("serve")
                .arg(clap::Arg::new("token").long("token").env("PP_TEST_TOKEN")),
        );
        let lookup = |name: &OsStr| (name == "PP_TEST_TOKEN").then(|| OsString::from(" "));
        let command = blank_env_is_unset(command, &lookup);
        let serve = command.find_subcommand("serve").unwrap();
        let token = serve.get_arguments().next().unwrap();
        assert!(token.get_env().is_none());
    }
}

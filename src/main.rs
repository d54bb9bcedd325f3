//! The `patchpilot` command line.

use clap::{Parser, Subcommand};
use patchpilot::agent::localize::LocalizeArgs;
use patchpilot::app;
use patchpilot::config::ServeArgs;
use patchpilot::github::manifest::AppCreateArgs;
use patchpilot::local_run::RunArgs;
use patchpilot::server::LogFormat;
use patchpilot::store::DatabaseArgs;

#[derive(Parser, Debug)]
#[command(
    name = "patchpilot",
    version,
    about = "Turns bug reports into tested pull requests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the GitHub App server: webhooks, session API, live pages and workers.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Run the pipeline once on a local path or URL, without GitHub; prints the verified diff.
    Run(Box<RunArgs>),
    /// Rank the files of a repository most likely to hold an issue's bug (no model involved).
    Localize(LocalizeArgs),
    /// GitHub App set-up.
    #[command(subcommand)]
    App(AppCommand),
}

#[derive(Subcommand, Debug)]
enum AppCommand {
    /// Register a new GitHub App from app-manifest.yml and write its credentials to .env.
    Create(AppCreateArgs),
}

fn main() -> std::process::ExitCode {
    let cli: Cli = patchpilot::config::parse_cli();
    let json_logs = match &cli.command {
        Command::Serve(args) => args.server.log_format == LogFormat::Json,
        _ => false,
    };
    app::init_logging(json_logs);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: could not start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => app::serve(*args).await.map(|()| true),
            Command::Migrate(args) => app::open_store(&args.database_url).await.map(|_| true),
            Command::Run(args) => patchpilot::local_run::run_local(*args).await,
            Command::Localize(args) => patchpilot::agent::localize::run_cli(&args).map(|()| true),
            Command::App(AppCommand::Create(args)) => {
                patchpilot::github::manifest::run_app_create(args)
                    .await
                    .map(|()| true)
            }
        }
    });
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every flattened settings group must fit together (unique ids, flags and env names).
    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}

//! The `patchpilot` command line.

use clap::{Parser, Subcommand};
use patchpilot::app;
use patchpilot::config::{DatabaseArgs, LogFormat, ServeArgs};

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
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
            Command::Serve(args) => app::serve(args).await,
            Command::Migrate(args) => app::open_store(&args.database_url).await.map(|_| ()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! Where the store lives.

/// Database settings, shared by `serve` and `migrate`.
#[derive(clap::Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// Where state lives: `sqlite://file.db` (default, created if missing) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://patchpilot.db")]
    pub database_url: String,
}

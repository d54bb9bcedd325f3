//! The start-up probe picks the strongest tier this machine supports, and each forced tier
//! really is the one described.

mod support;

use patchpilot::sandbox::{SandboxArgs, Tier, TierChoice, probe};

#[test]
fn auto_picks_bubblewrap_on_this_machine() {
    // Each test probes with uids of its own: probes run commands (the toolchain report), and
    // a parallel test's sweep of a shared uid would kill them.
    let sb = probe(&SandboxArgs {
        uid_base: 260_000,
        ..SandboxArgs::default()
    });
    assert_eq!(sb.tier(), Tier::Bubblewrap);
    assert!(sb.describe().contains("bubblewrap"), "{}", sb.describe());
}

#[test]
fn landlock_can_be_chosen_and_says_so() {
    let args = SandboxArgs {
        tier: TierChoice::Landlock,
        uid_base: 261_000,
        ..SandboxArgs::default()
    };
    let sb = probe(&args);
    assert_eq!(sb.tier(), Tier::Landlock);
    assert!(sb.describe().contains("Landlock"), "{}", sb.describe());
}

#[test]
fn unsandboxed_runs_are_announced_loudly() {
    let args = SandboxArgs {
        tier: TierChoice::Bubblewrap,
        bwrap: "/nonexistent/bwrap".into(),
        allow_unsandboxed: true,
        uid_base: 262_000,
        ..SandboxArgs::default()
    };
    let sb = probe(&args);
    assert_eq!(sb.tier(), Tier::Unsandboxed);
    assert!(
        sb.describe().contains("WITHOUT a sandbox"),
        "{}",
        sb.describe()
    );
}

#[test]
fn the_operators_consent_comes_from_the_documented_variable() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sandbox: SandboxArgs,
    }
    let cli = Cli::parse_from(["x", "--allow-unsandboxed", "--sandbox-tier", "landlock"]);
    assert!(cli.sandbox.allow_unsandboxed);
    assert_eq!(cli.sandbox.tier, TierChoice::Landlock);
    let cli = Cli::parse_from(["x"]);
    assert!(!cli.sandbox.allow_unsandboxed);
}

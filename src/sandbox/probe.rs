//! The start-up probe: picks the strongest tier this machine supports and says which.
//!
//! Each candidate is tried for real (bubblewrap runs `true` with every option a command will
//! get; Landlock enforces a ruleset on `true`), so a machine where bwrap is installed but user
//! namespaces are forbidden — the usual container — falls through to Landlock instead of
//! failing every command later. The probe blocks for a few milliseconds; call it once at
//! start-up and share the `Arc`.

use std::sync::Arc;

use super::bwrap::BubblewrapSandbox;
use super::direct::{DirectSandbox, RefusedSandbox};
use super::identity::UidPool;
use super::toolchains::{ToolchainState, check_all_blocking};
use super::{Sandbox, SandboxArgs, TierChoice};

/// Chooses the sandbox backend, runs each toolchain found in it, and logs both.
pub fn probe(args: &SandboxArgs) -> Arc<dyn Sandbox> {
    let sandbox = choose(args);
    tracing::info!(tier = ?sandbox.tier(), sandbox = %sandbox.describe(), "sandbox tier chosen");
    for check in sandbox.toolchains() {
        match &check.state {
            ToolchainState::Works { version } => {
                tracing::info!(toolchain = %check.name, %version, "toolchain runs in the sandbox");
            }
            ToolchainState::Broken { reason } => {
                tracing::warn!(toolchain = %check.name, %reason, "toolchain does NOT run in the sandbox");
            }
        }
    }
    sandbox
}

fn choose(args: &SandboxArgs) -> Arc<dyn Sandbox> {
    let toolchains = args.toolchains();
    let uids = UidPool::new(args.uid_base, args.uid_count);
    let caches = args.caches();
    if matches!(args.tier, TierChoice::Auto | TierChoice::Bubblewrap) {
        match BubblewrapSandbox::new(args.bwrap.clone(), toolchains.clone(), uids.clone()) {
            Ok(sb) => match sb.self_test() {
                Ok(()) => {
                    let mut sb = match caches {
                        Some(c) => sb.with_caches(c),
                        None => sb,
                    };
                    sb.set_toolchain_checks(check_all_blocking(&sb, &toolchains));
                    return Arc::new(sb);
                }
                Err(err) => tracing::warn!(%err, "bubblewrap does not work here"),
            },
            Err(err) => tracing::warn!(%err, "could not prepare the bubblewrap sandbox"),
        }
    }
    if matches!(args.tier, TierChoice::Auto | TierChoice::Landlock) {
        match DirectSandbox::landlock(toolchains.clone(), uids.clone()) {
            Ok(sb) => match sb.self_test() {
                Ok(()) => {
                    let mut sb = match caches {
                        Some(c) => sb.with_caches(c),
                        None => sb,
                    };
                    sb.set_toolchain_checks(check_all_blocking(&sb, &toolchains));
                    return Arc::new(sb);
                }
                Err(err) => tracing::warn!(%err, "Landlock does not work here"),
            },
            Err(err) => tracing::warn!(%err, "could not prepare the Landlock sandbox"),
        }
    }
    if args.allow_unsandboxed {
        match DirectSandbox::unsandboxed(toolchains.clone(), uids) {
            Ok(sb) => {
                tracing::warn!("no sandbox available: running commands UNSANDBOXED as allowed");
                let mut sb = match caches {
                    Some(c) => sb.with_caches(c),
                    None => sb,
                };
                sb.set_toolchain_checks(check_all_blocking(&sb, &toolchains));
                return Arc::new(sb);
            }
            Err(err) => tracing::error!(%err, "could not prepare unsandboxed runs"),
        }
    }
    tracing::error!("no sandbox available: repository commands will be refused");
    Arc::new(RefusedSandbox)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Tier;

    #[test]
    fn a_missing_bwrap_falls_through_to_the_next_tier() {
        let args = SandboxArgs {
            tier: TierChoice::Bubblewrap,
            bwrap: "/nonexistent/bwrap".into(),
            ..SandboxArgs::default()
        };
        assert_eq!(probe(&args).tier(), Tier::Refused);
        let allowed = SandboxArgs {
            allow_unsandboxed: true,
            ..args
        };
        assert_eq!(probe(&allowed).tier(), Tier::Unsandboxed);
    }
}

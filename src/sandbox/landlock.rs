//! Landlock rules for Tier B: what a sandboxed command may read, write and connect to.
//!
//! The ruleset is built in the server (opening each allowed path) and applied in the forked
//! child just before exec with `restrict_self`, which also sets `no_new_privs`. Everything not
//! listed is denied by the kernel, whatever the file permissions say: read-only system and
//! toolchain paths, read-write only the work tree, the private tmp and a few device nodes.
//! TCP bind and connect are denied unless the command has network. Where the kernel offers
//! Landlock scopes (ABI 6), signals to and abstract sockets of processes outside the sandbox
//! are denied too. The file-system and TCP rules are a hard requirement: on a kernel that
//! cannot enforce them the ruleset fails to build and the probe does not choose this tier.

use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetError, Scope, path_beneath_rules,
};

/// System paths every command may read and execute.
const SYSTEM_READ: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/proc", "/dev", "/sys",
];
/// Device nodes every command may write.
const DEVICES_WRITE: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"];

/// What a command may touch.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub read_only: Vec<PathBuf>,
    pub read_write: Vec<PathBuf>,
    pub network: bool,
}

impl Rules {
    /// The standard rules: system and `toolchains` read-only, `writable` read-write.
    pub fn standard(toolchains: &[PathBuf], writable: Vec<PathBuf>, network: bool) -> Self {
        let mut read_only: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
        read_only.extend(toolchains.iter().cloned());
        let mut read_write = writable;
        read_write.extend(DEVICES_WRITE.iter().map(PathBuf::from));
        Self {
            read_only,
            read_write,
            network,
        }
    }

    /// Builds the ruleset, ready for `restrict_self` in the child.
    pub fn build(&self) -> Result<RulesetCreated, RulesetError> {
        let fs_abi = ABI::V3;
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(fs_abi))?;
        if !self.network {
            ruleset = ruleset.handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?;
        }
        let ruleset = ruleset
            .set_compatibility(CompatLevel::BestEffort)
            .scope(Scope::AbstractUnixSocket | Scope::Signal)?;
        ruleset
            .create()?
            .set_compatibility(CompatLevel::HardRequirement)
            .add_rules(path_beneath_rules(
                &self.read_only,
                AccessFs::from_read(fs_abi),
            ))?
            .add_rules(path_beneath_rules(
                &self.read_write,
                AccessFs::from_all(fs_abi),
            ))
    }
}

/// In the forked child, after the private mounts: lets the command read the fresh `/proc`
/// mounted there (the `/proc` rule of [`Rules::standard`] names the host's instance). Only
/// system calls on a static path: nothing allocates.
pub(crate) fn allow_fresh_proc(ruleset: RulesetCreated) -> std::io::Result<RulesetCreated> {
    use nix::fcntl::{OFlag, open};
    let fd = open(
        c"/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    ruleset
        .add_rule(PathBeneath::new(fd, AccessFs::from_read(ABI::V3)))
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_rules_keep_the_work_tree_writable_and_the_system_read_only() {
        let r = Rules::standard(
            &[PathBuf::from("/opt/tool")],
            vec![PathBuf::from("/w")],
            false,
        );
        assert!(r.read_only.contains(&PathBuf::from("/usr")));
        assert!(r.read_only.contains(&PathBuf::from("/opt/tool")));
        assert!(r.read_write.contains(&PathBuf::from("/w")));
        assert!(!r.read_write.contains(&PathBuf::from("/tmp")));
        assert!(!r.network);
    }
}

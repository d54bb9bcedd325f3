//! File access to a work tree that sandboxed commands have had in their hands, never
//! following a link.
//!
//! Every path is walked from the work tree's root one component at a time with
//! `openat(O_NOFOLLOW | O_DIRECTORY)`, so a directory swapped for a symbolic link is refused
//! by the kernel instead of being traversed, wherever on the path it is. Files are written by
//! creating a fresh file in the (already opened) directory and renaming it over the old name:
//! a hard link or a symlink at the final name is replaced, never written through. Reads open
//! the final name with `O_NOFOLLOW` and check, on the opened file, that it is a regular file
//! with one link.
//!
//! std has no `openat`; nix's thin wrappers are used (already a dependency for the sandbox).

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// What a sandboxed command did to a path PatchPilot wrote. Display is a clause for the
/// maintainer, e.g. "`pkg/greet.sh` was changed after PatchPilot's edits".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tampering {
    /// The edited path (repo-relative).
    pub path: String,
    pub kind: TamperKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TamperKind {
    /// A directory on the path (`component`) is now a symbolic link.
    LinkOnPath { component: String },
    /// A directory on the path (`component`) is now something other than a directory.
    NotADirectory { component: String },
    /// The file itself is now a symbolic link.
    Link,
    /// The file is now a directory, device, FIFO or socket.
    NotAFile,
    /// The file has more than one hard link.
    HardLinked,
    /// The file's content is not what PatchPilot wrote (or what the base commit holds).
    Changed,
    /// The file (or a directory on its path) was deleted.
    Deleted,
    /// The content the edits were applied to is not the base commit's: a command changed the
    /// file before the edits, and the edited file would carry that change.
    ChangedBeforeEdits,
}

impl fmt::Display for Tampering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match &self.kind {
            TamperKind::LinkOnPath { component } => write!(
                f,
                "`{component}` (on the path of `{path}`) was replaced with a symbolic link"
            ),
            TamperKind::NotADirectory { component } => write!(
                f,
                "`{component}` (on the path of `{path}`) is no longer a directory"
            ),
            TamperKind::Link => write!(f, "`{path}` was replaced with a symbolic link"),
            TamperKind::NotAFile => write!(f, "`{path}` is no longer a regular file"),
            TamperKind::HardLinked => write!(f, "`{path}` was hard-linked to another file"),
            TamperKind::Changed => write!(f, "`{path}` was changed"),
            TamperKind::Deleted => write!(f, "`{path}` was deleted"),
            TamperKind::ChangedBeforeEdits => {
                return write!(
                    f,
                    "`{path}` was changed before PatchPilot's edits were applied to it, so \
                     publishing would include a change PatchPilot did not make"
                );
            }
        }?;
        f.write_str(" after PatchPilot's edits")
    }
}

/// Why a work-tree operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WorkTreeError {
    /// The path is not in the shape PatchPilot left it in; nothing was read or written.
    #[error("{0}")]
    Tampered(Tampering),
    #[error("{context} `{path}`: {source}")]
    Io {
        path: String,
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn tampered(path: &str, kind: TamperKind) -> WorkTreeError {
    WorkTreeError::Tampered(Tampering {
        path: path.to_owned(),
        kind,
    })
}

fn io(path: &str, context: &'static str, errno: Errno) -> WorkTreeError {
    WorkTreeError::Io {
        path: path.to_owned(),
        context,
        source: std::io::Error::from(errno),
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn is_kind(stat: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == kind
}

/// The opened parent directory of `path` and the final name, or `None` when a directory on
/// the path does not exist (and `create` is false). `path` is repo-relative and `/`-separated;
/// callers have validated it (no `..`, no `.git`).
fn parent_of<'p>(
    root: &Path,
    path: &'p str,
    create: bool,
) -> Result<Option<(OwnedFd, &'p str)>, WorkTreeError> {
    let mut dir = nix::fcntl::open(root, DIR_FLAGS, Mode::empty())
        .map_err(|e| io(path, "opening the work tree", e))?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let Some((name, parents)) = parts.split_last() else {
        return Err(io(path, "resolving", Errno::EINVAL));
    };
    for (i, part) in parents.iter().enumerate() {
        let component = parts[..=i].join("/");
        let opened = match openat(&dir, *part, DIR_FLAGS, Mode::empty()) {
            Err(Errno::ENOENT) if create => {
                match mkdirat(&dir, *part, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(io(path, "creating a directory for", e)),
                }
                openat(&dir, *part, DIR_FLAGS, Mode::empty())
            }
            other => other,
        };
        dir = match opened {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(tampered(path, TamperKind::LinkOnPath { component })),
            Err(Errno::ENOTDIR) => {
                // O_NOFOLLOW with O_DIRECTORY reports a symlink as ENOTDIR on some kernels.
                let link = fstatat(&dir, *part, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|s| is_kind(&s, SFlag::S_IFLNK));
                let kind = if link {
                    TamperKind::LinkOnPath { component }
                } else {
                    TamperKind::NotADirectory { component }
                };
                return Err(tampered(path, kind));
            }
            Err(e) => return Err(io(path, "opening a directory of", e)),
        };
    }
    Ok(Some((dir, name)))
}

/// The content of regular file `path`, or `None` if it (or a directory on its path) does not
/// exist. A link anywhere on the path, a non-regular file or a hard-linked file is
/// [`WorkTreeError::Tampered`].
pub fn read_file(root: &Path, path: &str) -> Result<Option<Vec<u8>>, WorkTreeError> {
    let Some((dir, name)) = parent_of(root, path, false)? else {
        return Ok(None);
    };
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = match openat(&dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => return Err(tampered(path, TamperKind::Link)),
        Err(e) => return Err(io(path, "opening", e)),
    };
    let stat = fstat(&fd).map_err(|e| io(path, "inspecting", e))?;
    if !is_kind(&stat, SFlag::S_IFREG) {
        return Err(tampered(path, TamperKind::NotAFile));
    }
    if stat.st_nlink > 1 {
        return Err(tampered(path, TamperKind::HardLinked));
    }
    let mut bytes = Vec::new();
    File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(|source| WorkTreeError::Io {
            path: path.to_owned(),
            context: "reading",
            source,
        })?;
    Ok(Some(bytes))
}

/// Replaces `path` with a new regular file holding `bytes`, creating missing directories.
/// `mode` is the permission bits; `None` keeps those of the file it replaces (0644 for a new
/// one). A link or hard link at `path` is replaced, never written through.
pub fn write_file(
    root: &Path,
    path: &str,
    bytes: &[u8],
    mode: Option<u32>,
) -> Result<(), WorkTreeError> {
    let (dir, name) = parent_of(root, path, true)?
        .ok_or_else(|| io(path, "creating the directories of", Errno::ENOENT))?;
    let existing = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
    if existing.is_some_and(|s| is_kind(&s, SFlag::S_IFDIR)) {
        return Err(tampered(path, TamperKind::NotAFile));
    }
    let mode = mode.unwrap_or_else(|| match existing {
        Some(s) if is_kind(&s, SFlag::S_IFREG) => s.st_mode & 0o777,
        _ => 0o644,
    });
    let temp = format!(".{name}.patchpilot-{}", uuid::Uuid::new_v4().simple());
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(&dir, temp.as_str(), flags, Mode::from_bits_truncate(0o600))
        .map_err(|e| io(path, "creating a file for", e))?;
    let written = fchmod(&fd, Mode::from_bits_truncate(mode))
        .map_err(std::io::Error::from)
        .and_then(|()| {
            let mut file = File::from(fd);
            file.write_all(bytes)?;
            file.sync_data()
        })
        .map_err(|source| WorkTreeError::Io {
            path: path.to_owned(),
            context: "writing",
            source,
        })
        .and_then(|()| {
            renameat(&dir, temp.as_str(), &dir, name).map_err(|e| io(path, "replacing", e))
        });
    if written.is_err() {
        let _ = unlinkat(&dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    written
}

/// Removes the directory entry `path` (a link is removed itself, never its target). A path
/// that does not exist is not an error; a link on a directory of its path is tampering.
pub fn remove_file(root: &Path, path: &str) -> Result<(), WorkTreeError> {
    let Some((dir, name)) = parent_of(root, path, false)? else {
        return Ok(());
    };
    match unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => Err(tampered(path, TamperKind::NotAFile)),
        Err(e) => Err(io(path, "removing", e)),
    }
}

/// Checks that every `(path, bytes)` is, in the work tree, a regular file holding exactly
/// `bytes`, reached without a link: what PatchPilot wrote is what is there.
pub fn check_unchanged(root: &Path, files: &[(String, Vec<u8>)]) -> Result<(), WorkTreeError> {
    for (path, expected) in files {
        match read_file(root, path)? {
            Some(bytes) if &bytes == expected => {}
            Some(_) => return Err(tampered(path, TamperKind::Changed)),
            None => return Err(tampered(path, TamperKind::Deleted)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("pkg/a.txt"), "a\n").unwrap();
        dir
    }

    fn kind(result: Result<impl std::fmt::Debug, WorkTreeError>) -> TamperKind {
        match result {
            Err(WorkTreeError::Tampered(t)) => t.kind,
            other => panic!("expected tampering, got {other:?}"),
        }
    }

    #[test]
    fn reads_and_writes_regular_files() {
        let t = tree();
        assert_eq!(read_file(t.path(), "pkg/a.txt").unwrap().unwrap(), b"a\n");
        assert_eq!(read_file(t.path(), "pkg/none.txt").unwrap(), None);
        assert_eq!(read_file(t.path(), "nodir/none.txt").unwrap(), None);
        write_file(t.path(), "new/dir/b.txt", b"b\n", None).unwrap();
        assert_eq!(
            std::fs::read(t.path().join("new/dir/b.txt")).unwrap(),
            b"b\n"
        );
        write_file(t.path(), "run.sh", b"#!/bin/sh\n", Some(0o755)).unwrap();
        let mode = std::fs::metadata(t.path().join("run.sh")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o755);
        // Replacing keeps the mode of the file replaced.
        write_file(t.path(), "run.sh", b"#!/bin/sh\necho\n", None).unwrap();
        let meta = std::fs::metadata(t.path().join("run.sh")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        let leftovers: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("patchpilot"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_linked_directory_is_never_traversed() {
        let t = tree();
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("a.txt"), "host\n").unwrap();
        std::fs::remove_dir_all(t.path().join("pkg")).unwrap();
        symlink(host.path(), t.path().join("pkg")).unwrap();
        let expect = TamperKind::LinkOnPath {
            component: "pkg".into(),
        };
        assert_eq!(kind(read_file(t.path(), "pkg/a.txt")), expect);
        assert_eq!(kind(write_file(t.path(), "pkg/a.txt", b"x", None)), expect);
        assert_eq!(kind(remove_file(t.path(), "pkg/a.txt")), expect);
        assert_eq!(std::fs::read(host.path().join("a.txt")).unwrap(), b"host\n");
        assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_linked_or_hard_linked_file_is_replaced_not_written_through() {
        let t = tree();
        let host = tempfile::tempdir().unwrap();
        let secret = host.path().join("secret");
        std::fs::write(&secret, "host\n").unwrap();
        symlink(&secret, t.path().join("pkg/a.txt")).unwrap_or_else(|_| {
            std::fs::remove_file(t.path().join("pkg/a.txt")).unwrap();
            symlink(&secret, t.path().join("pkg/a.txt")).unwrap();
        });
        assert_eq!(kind(read_file(t.path(), "pkg/a.txt")), TamperKind::Link);
        write_file(t.path(), "pkg/a.txt", b"mine\n", None).unwrap();
        assert_eq!(std::fs::read(&secret).unwrap(), b"host\n");
        assert_eq!(
            read_file(t.path(), "pkg/a.txt").unwrap().unwrap(),
            b"mine\n"
        );

        std::fs::remove_file(t.path().join("pkg/a.txt")).unwrap();
        std::fs::hard_link(&secret, t.path().join("pkg/a.txt")).unwrap();
        assert_eq!(
            kind(read_file(t.path(), "pkg/a.txt")),
            TamperKind::HardLinked
        );
        write_file(t.path(), "pkg/a.txt", b"mine\n", None).unwrap();
        assert_eq!(std::fs::read(&secret).unwrap(), b"host\n");
        remove_file(t.path(), "pkg/a.txt").unwrap();
        assert!(secret.exists());
    }

    #[test]
    fn check_unchanged_names_what_happened() {
        let t = tree();
        let files = vec![("pkg/a.txt".to_owned(), b"a\n".to_vec())];
        check_unchanged(t.path(), &files).unwrap();
        std::fs::write(t.path().join("pkg/a.txt"), "b\n").unwrap();
        assert_eq!(kind(check_unchanged(t.path(), &files)), TamperKind::Changed);
        std::fs::remove_file(t.path().join("pkg/a.txt")).unwrap();
        assert_eq!(kind(check_unchanged(t.path(), &files)), TamperKind::Deleted);
        std::fs::create_dir(t.path().join("pkg/a.txt")).unwrap();
        assert_eq!(
            kind(check_unchanged(t.path(), &files)),
            TamperKind::NotAFile
        );
        std::fs::remove_dir_all(t.path().join("pkg")).unwrap();
        std::fs::write(t.path().join("pkg"), "file\n").unwrap();
        assert_eq!(
            kind(check_unchanged(t.path(), &files)),
            TamperKind::NotADirectory {
                component: "pkg".into()
            }
        );
    }
}

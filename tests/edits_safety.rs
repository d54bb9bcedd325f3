//! The edit protocol never changes anything outside the work tree, inside `.git`, or
//! through a symlink — driven with replies as a model would send them.

use std::collections::BTreeMap;
use std::path::Path;

use patchpilot::agent::edits::{EditError, EditPolicy, apply_edits, parse_edits};

/// Every file under `root` (not following links) with its bytes, and every link target.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let key = path.strip_prefix(root).unwrap().display().to_string();
            let ft = entry.file_type().unwrap();
            if ft.is_symlink() {
                out.insert(
                    key,
                    std::fs::read_link(&path)
                        .unwrap()
                        .display()
                        .to_string()
                        .into_bytes(),
                );
            } else if ft.is_dir() {
                stack.push(path);
            } else {
                out.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

struct World {
    base: tempfile::TempDir,
    outside: tempfile::TempDir,
}

impl World {
    /// `base/tree` is the work tree (with `.git/config` and a source file); `base/x`
    /// sits next to it; `outside` is an unrelated directory the tree links to.
    fn new() -> Self {
        let base = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let tree = base.path().join("tree");
        std::fs::create_dir_all(tree.join(".git")).unwrap();
        std::fs::create_dir_all(tree.join("src")).unwrap();
        std::fs::write(tree.join(".git/config"), "[core]\n\tbare = false\n").unwrap();
        std::fs::write(tree.join("src/app.py"), "def f():\n    return 1\n").unwrap();
        std::fs::write(base.path().join("x"), "neighbour\n").unwrap();
        std::fs::write(outside.path().join("secret.txt"), "keep\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), tree.join("linkdir")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            tree.join("src/linked.py"),
        )
        .unwrap();
        Self { base, outside }
    }

    fn tree(&self) -> std::path::PathBuf {
        self.base.path().join("tree")
    }

    fn state(&self) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Vec<u8>>) {
        (snapshot(self.base.path()), snapshot(self.outside.path()))
    }

    /// Parses and applies `reply`, asserting it is refused and that nothing changed.
    fn refuse(&self, reply: &str) -> EditError {
        let before = self.state();
        let edits = parse_edits(reply).expect("reply parses");
        let err =
            apply_edits(&self.tree(), &edits, &EditPolicy::default()).expect_err("must be refused");
        assert_eq!(
            self.state(),
            before,
            "something changed after refusing: {err}"
        );
        err
    }
}

fn block(path: &str, search: &str, replace: &str) -> String {
    format!("{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n")
}

/// A valid edit first, so the test also proves refusal is all-or-nothing.
fn with_valid_first(bad: &str) -> String {
    format!(
        "{}{bad}",
        block("src/app.py", "    return 1\n", "    return 2\n")
    )
}

#[test]
fn parent_directory_escape_is_refused() {
    let w = World::new();
    let err = w.refuse(&with_valid_first(&block("../x", "neighbour\n", "owned\n")));
    assert!(matches!(err, EditError::InvalidPath { .. }), "{err}");
    assert!(err.to_string().contains("`..` is not allowed"));
    let err = w.refuse(&block("src/../../x", "", "new\n"));
    assert!(matches!(err, EditError::InvalidPath { .. }));
}

#[test]
fn git_directory_is_refused() {
    let w = World::new();
    let err = w.refuse(&with_valid_first(&block(
        ".git/config",
        "[core]\n",
        "[core]\n\tfsmonitor = evil\n",
    )));
    assert_eq!(
        err,
        EditError::GitDir {
            path: ".git/config".into()
        }
    );
    w.refuse(&block(".git/hooks/pre-commit", "", "#!/bin/sh\nrm -rf /\n"));
}

#[test]
fn writing_through_symlinks_is_refused() {
    let w = World::new();
    let err = w.refuse(&with_valid_first(&block(
        "linkdir/secret.txt",
        "keep\n",
        "gone\n",
    )));
    assert_eq!(
        err,
        EditError::Symlink {
            path: "linkdir/secret.txt".into(),
            link: "linkdir".into()
        }
    );
    let err = w.refuse(&block("linkdir/new.txt", "", "planted\n"));
    assert!(matches!(err, EditError::Symlink { .. }));
    let err = w.refuse(&block("src/linked.py", "keep\n", "gone\n"));
    assert_eq!(
        err,
        EditError::Symlink {
            path: "src/linked.py".into(),
            link: "src/linked.py".into()
        }
    );
}

#[test]
fn absolute_paths_are_refused() {
    let w = World::new();
    let target = w.outside.path().join("secret.txt");
    let err = w.refuse(&block(&target.display().to_string(), "keep\n", "gone\n"));
    assert!(matches!(err, EditError::InvalidPath { .. }));
}

#[test]
fn diff_paths_follow_the_same_rules() {
    let w = World::new();
    let reply = "```diff\n--- a/.git/config\n+++ b/.git/config\n@@ -1 +1 @@\n-[core]\n+[evil]\n```";
    assert!(matches!(w.refuse(reply), EditError::GitDir { .. }));
    let reply = "```diff\n--- /dev/null\n+++ b/linkdir/planted.txt\n@@ -0,0 +1 @@\n+x\n```";
    assert!(matches!(w.refuse(reply), EditError::Symlink { .. }));
}

#[test]
fn a_valid_reply_changes_only_the_named_file() {
    let w = World::new();
    let (before_base, before_outside) = w.state();
    let edits = parse_edits(&block("src/app.py", "    return 1\n", "    return 2\n")).unwrap();
    let applied = apply_edits(&w.tree(), &edits, &EditPolicy::default()).unwrap();
    assert_eq!(applied.changed_files, ["src/app.py"]);
    let (after_base, after_outside) = w.state();
    assert_eq!(after_outside, before_outside);
    let changed: Vec<&String> = after_base
        .keys()
        .filter(|k| before_base.get(*k) != after_base.get(*k))
        .collect();
    assert_eq!(changed, ["tree/src/app.py"]);
}

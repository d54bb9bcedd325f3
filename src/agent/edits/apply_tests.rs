//! Behaviour of `apply_edits` on real temporary directories.

use super::*;
use crate::agent::edits::parse_edits;

fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (p, c) in files {
        let full = dir.path().join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, c).unwrap();
    }
    dir
}

fn read(dir: &tempfile::TempDir, p: &str) -> String {
    std::fs::read_to_string(dir.path().join(p)).unwrap()
}

fn sr(path: &str, search: &str, replace: &str) -> Edit {
    Edit::SearchReplace {
        path: path.into(),
        search: search.into(),
        replace: replace.into(),
    }
}

#[test]
fn applies_search_replace_and_reports_changed_files() {
    let dir = tree(&[("src/a.py", "import os\n\ndef f():\n    return 1\n")]);
    let out = apply_edits(
        dir.path(),
        &[sr("src/a.py", "    return 1\n", "    return 2\n")],
        &EditPolicy::default(),
    )
    .unwrap();
    assert_eq!(out.changed_files, ["src/a.py"]);
    assert_eq!(
        read(&dir, "src/a.py"),
        "import os\n\ndef f():\n    return 2\n"
    );
}

#[test]
fn edits_chain_on_the_same_file_and_create_new_files_with_parents() {
    let dir = tree(&[("a.txt", "one\ntwo\n")]);
    let edits = [
        sr("a.txt", "one\n", "uno\n"),
        sr("a.txt", "uno\ntwo\n", "uno\ndos\n"),
        sr("new/dir/b.txt", "", "hi\n"),
    ];
    let out = apply_edits(dir.path(), &edits, &EditPolicy::default()).unwrap();
    assert_eq!(out.changed_files, ["a.txt", "new/dir/b.txt"]);
    assert_eq!(read(&dir, "a.txt"), "uno\ndos\n");
    assert_eq!(read(&dir, "new/dir/b.txt"), "hi\n");
}

#[test]
fn all_or_nothing_when_a_later_edit_fails() {
    let dir = tree(&[("a.txt", "one\n"), ("b.txt", "two\n")]);
    let edits = [
        sr("a.txt", "one\n", "ONE\n"),
        sr("b.txt", "missing\n", "x\n"),
    ];
    let err = apply_edits(dir.path(), &edits, &EditPolicy::default()).unwrap_err();
    assert!(matches!(err, EditError::NoMatch { .. }));
    assert_eq!(read(&dir, "a.txt"), "one\n");
}

#[test]
fn no_match_message_names_file_and_shows_closest_region_with_line_numbers() {
    let dir = tree(&[(
        "app/config.py",
        "import os\n\ndef load(path):\n    with open(path) as f:\n        return f.read()\n",
    )]);
    let err = apply_edits(
        dir.path(),
        &[sr(
            "app/config.py",
            "def load(path, mode):\n    with open(path) as f:\n",
            "x\n",
        )],
        &EditPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the SEARCH block for `app/config.py` does not match the file exactly. It searched for:\n    def load(path, mode):\n        with open(path) as f:\nThe closest region of `app/config.py` is at line 3:\n3 | def load(path):\n4 |     with open(path) as f:\nCopy the existing lines exactly (including indentation) into SEARCH and try again."
    );
}

#[test]
fn ambiguous_search_lists_lines() {
    let dir = tree(&[("a.py", "x = 1\ny\nx = 1\n")]);
    let err = apply_edits(
        dir.path(),
        &[sr("a.py", "x = 1\n", "x = 2\n")],
        &EditPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the SEARCH block for `a.py` matches 2 places (lines 1, 3); add surrounding lines so it matches exactly one"
    );
}

#[test]
fn crlf_files_stay_crlf_and_trailing_whitespace_is_tolerated() {
    let dir = tree(&[("w.bat", "echo a\r\necho b  \r\n")]);
    apply_edits(
        dir.path(),
        &[sr("w.bat", "echo b\n", "echo c\n")],
        &EditPolicy::default(),
    )
    .unwrap();
    assert_eq!(read(&dir, "w.bat"), "echo a\r\necho c\r\n");
}

#[test]
fn missing_final_newline_is_preserved() {
    let dir = tree(&[("a.txt", "a\nb")]);
    apply_edits(
        dir.path(),
        &[sr("a.txt", "a\n", "A\n")],
        &EditPolicy::default(),
    )
    .unwrap();
    assert_eq!(read(&dir, "a.txt"), "A\nb");
}

#[test]
fn creating_an_existing_file_or_editing_a_missing_one_is_refused() {
    let dir = tree(&[("a.txt", "a\n")]);
    let e = apply_edits(
        dir.path(),
        &[sr("a.txt", "", "b\n")],
        &EditPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        EditError::FileExists {
            path: "a.txt".into()
        }
    );
    let e = apply_edits(
        dir.path(),
        &[sr("b.txt", "x\n", "y\n")],
        &EditPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        EditError::FileMissing {
            path: "b.txt".into()
        }
    );
}

#[test]
fn size_limits_per_file_and_total() {
    let dir = tree(&[("a.txt", "a\n")]);
    let policy = EditPolicy {
        max_file_bytes: 10,
        max_total_bytes: 15,
        ..EditPolicy::default()
    };
    let e = apply_edits(dir.path(), &[sr("a.txt", "a\n", "0123456789ab\n")], &policy).unwrap_err();
    assert!(matches!(
        e,
        EditError::TooLarge {
            size: 13,
            limit: 10,
            ..
        }
    ));
    let e = apply_edits(
        dir.path(),
        &[sr("b.txt", "", "12345678\n"), sr("c.txt", "", "12345678\n")],
        &policy,
    )
    .unwrap_err();
    assert_eq!(
        e,
        EditError::TotalTooLarge {
            size: 18,
            limit: 15
        }
    );
    assert!(!dir.path().join("b.txt").exists());
}

#[test]
fn protected_paths_are_refused() {
    let dir = tree(&[(".github/workflows/ci.yml", "on: push\n")]);
    let policy = EditPolicy {
        protected_paths: vec![".github/".into()],
        ..EditPolicy::default()
    };
    let e = apply_edits(
        dir.path(),
        &[sr(
            ".github/workflows/ci.yml",
            "on: push\n",
            "on: pull_request\n",
        )],
        &policy,
    )
    .unwrap_err();
    assert_eq!(
        e,
        EditError::Protected {
            path: ".github/workflows/ci.yml".into()
        }
    );
}

#[test]
fn diff_edits_apply_and_mismatch_names_the_hunk() {
    let dir = tree(&[("m.py", "def f():\n    a = 1\n    b = 2\n    return a + b\n")]);
    let reply = "```diff\n--- a/m.py\n+++ b/m.py\n@@ -2,3 +2,3 @@\n     a = 1\n-    b = 2\n+    b = 3\n     return a + b\n```";
    apply_edits(
        dir.path(),
        &parse_edits(reply).unwrap(),
        &EditPolicy::default(),
    )
    .unwrap();
    assert_eq!(
        read(&dir, "m.py"),
        "def f():\n    a = 1\n    b = 3\n    return a + b\n"
    );
    let bad = "```diff\n--- a/m.py\n+++ b/m.py\n@@ -2 +2 @@\n-    b = 99\n+    b = 4\n```";
    let e = apply_edits(
        dir.path(),
        &parse_edits(bad).unwrap(),
        &EditPolicy::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("hunk 1 of the diff for `m.py` does not match"),
        "{e}"
    );
    assert!(e.to_string().contains("3 |     b = 3"), "{e}");
}

#[test]
fn diff_creates_new_file() {
    let dir = tree(&[]);
    let reply = "```diff\n--- /dev/null\n+++ b/pkg/new.py\n@@ -0,0 +1,2 @@\n+x = 1\n+y = 2\n```";
    apply_edits(
        dir.path(),
        &parse_edits(reply).unwrap(),
        &EditPolicy::default(),
    )
    .unwrap();
    assert_eq!(read(&dir, "pkg/new.py"), "x = 1\ny = 2\n");
}

#[test]
fn non_utf8_files_are_refused() {
    let dir = tree(&[]);
    std::fs::write(dir.path().join("bin.dat"), b"\xff\xfe\n").unwrap();
    let e = apply_edits(
        dir.path(),
        &[sr("bin.dat", "x\n", "y\n")],
        &EditPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        EditError::NotText {
            path: "bin.dat".into()
        }
    );
}

#[test]
fn the_applied_content_is_returned_for_publishing() {
    let dir = tree(&[("a.txt", "one\n")]);
    let edits = [sr("a.txt", "one\n", "uno\n"), sr("b/c.txt", "", "new\n")];
    let out = apply_edits(dir.path(), &edits, &EditPolicy::default()).unwrap();
    assert_eq!(
        out.files,
        [
            AppliedFile {
                path: "a.txt".into(),
                original: Some("one\n".into()),
                content: "uno\n".into(),
            },
            AppliedFile {
                path: "b/c.txt".into(),
                original: None,
                content: "new\n".into(),
            },
        ]
    );
}

/// A sandboxed command hard-linked an edited file to another one: the edit is refused rather
/// than written into both names.
#[test]
fn a_hard_linked_file_is_never_written_through() {
    let dir = tree(&[("a.txt", "one\n"), ("other.txt", "one\n")]);
    std::fs::remove_file(dir.path().join("a.txt")).unwrap();
    std::fs::hard_link(dir.path().join("other.txt"), dir.path().join("a.txt")).unwrap();
    let err = apply_edits(
        dir.path(),
        &[sr("a.txt", "one\n", "uno\n")],
        &EditPolicy::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("hard-linked"), "{err}");
    assert_eq!(read(&dir, "other.txt"), "one\n");
}

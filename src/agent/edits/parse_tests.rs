//! Replies as models really write them.

use super::*;
use crate::agent::edits::HunkLine;

fn sr(path: &str, search: &str, replace: &str) -> Edit {
    Edit::SearchReplace {
        path: path.into(),
        search: search.into(),
        replace: replace.into(),
    }
}

#[test]
fn plain_block_with_prose_around() {
    let reply = "The bug is an off-by-one.\n\nsrc/lib.rs\n<<<<<<< SEARCH\n    let end = len;\n=======\n    let end = len - 1;\n>>>>>>> REPLACE\n\nThat should fix it.";
    assert_eq!(
        parse_edits(reply).unwrap(),
        [sr(
            "src/lib.rs",
            "    let end = len;\n",
            "    let end = len - 1;\n"
        )]
    );
}

#[test]
fn block_inside_fence_with_decorated_path() {
    let reply = "**`app/config.py`**\n```python\n<<<<<<< SEARCH\nA = 1\n=======\nA = 2\n>>>>>>> REPLACE\n```\n";
    assert_eq!(
        parse_edits(reply).unwrap(),
        [sr("app/config.py", "A = 1\n", "A = 2\n")]
    );
    let reply = "```\nFile: app/x.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```";
    assert_eq!(parse_edits(reply).unwrap()[0].path(), "app/x.py");
}

#[test]
fn second_block_without_path_reuses_previous_path() {
    let reply = "src/a.rs\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n";
    let e = parse_edits(reply).unwrap();
    assert_eq!(
        e,
        [sr("src/a.rs", "a\n", "b\n"), sr("src/a.rs", "c\n", "d\n")]
    );
}

#[test]
fn empty_search_means_new_file_and_empty_replace_means_delete_lines() {
    let reply = "tests/test_new.py\n<<<<<<< SEARCH\n=======\ndef test_x():\n    assert True\n>>>>>>> REPLACE\nsrc/a.py\n<<<<<<< SEARCH\nimport os\n=======\n>>>>>>> REPLACE";
    let e = parse_edits(reply).unwrap();
    assert_eq!(
        e[0],
        sr("tests/test_new.py", "", "def test_x():\n    assert True\n")
    );
    assert_eq!(e[1], sr("src/a.py", "import os\n", ""));
}

#[test]
fn crlf_replies_are_normalised() {
    let reply = "a.txt\r\n<<<<<<< SEARCH\r\nx\r\n=======\r\ny\r\n>>>>>>> REPLACE\r\n";
    assert_eq!(parse_edits(reply).unwrap(), [sr("a.txt", "x\n", "y\n")]);
}

#[test]
fn missing_divider_or_replace_is_reported_with_line() {
    let reply = "a.py\n<<<<<<< SEARCH\nx\n";
    assert_eq!(
        parse_edits(reply),
        Err(ParseError::Unterminated {
            line: 2,
            path: "a.py".into(),
            expected: "======="
        })
    );
    let reply = "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n";
    assert_eq!(
        parse_edits(reply),
        Err(ParseError::Unterminated {
            line: 2,
            path: "a.py".into(),
            expected: ">>>>>>> REPLACE"
        })
    );
}

#[test]
fn missing_path_and_stray_markers_are_errors() {
    assert_eq!(
        parse_edits("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE"),
        Err(ParseError::MissingPath { line: 1 })
    );
    assert_eq!(
        parse_edits("hello\n>>>>>>> REPLACE\n"),
        Err(ParseError::StrayMarker {
            line: 2,
            marker: ">>>>>>> REPLACE".into()
        })
    );
    let nested = "a.py\n<<<<<<< SEARCH\nx\n=======\n<<<<<<< SEARCH\n>>>>>>> REPLACE";
    assert_eq!(
        parse_edits(nested),
        Err(ParseError::StrayMarker {
            line: 5,
            marker: "<<<<<<< SEARCH".into()
        })
    );
}

#[test]
fn markdown_heading_underline_is_not_a_marker() {
    let reply = "Title\n=======\n\na.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n";
    assert_eq!(parse_edits(reply).unwrap().len(), 1);
}

#[test]
fn no_edits_is_an_error_with_instructions() {
    let err = parse_edits("I think the problem is in config.py.").unwrap_err();
    assert_eq!(err, ParseError::NoEdits);
    assert!(err.to_string().contains("<<<<<<< SEARCH"));
}

#[test]
fn diff_fence_with_git_prefixes() {
    let reply = "Here is the fix:\n```diff\ndiff --git a/src/m.py b/src/m.py\nindex 1..2 100644\n--- a/src/m.py\n+++ b/src/m.py\n@@ -3,3 +3,3 @@ def f():\n     a = 1\n-    b = 2\n+    b = 3\n     return a + b\n```\n";
    let e = parse_edits(reply).unwrap();
    let Edit::Diff {
        path,
        hunks,
        new_file,
    } = &e[0]
    else {
        panic!("not a diff: {e:?}")
    };
    assert_eq!(path, "src/m.py");
    assert!(!new_file);
    assert_eq!(hunks[0].old_start, 3);
    assert_eq!(hunks[0].lines[1], HunkLine::Remove("    b = 2".into()));
}

#[test]
fn diff_creating_a_file_and_mixed_with_blocks() {
    let reply = "```diff\n--- /dev/null\n+++ b/docs/new.md\n@@ -0,0 +1,2 @@\n+# New\n+text\n```\nsrc/a.rs\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n";
    let e = parse_edits(reply).unwrap();
    assert!(matches!(&e[0], Edit::Diff { path, new_file: true, .. } if path == "docs/new.md"));
    assert_eq!(e[1].path(), "src/a.rs");
}

#[test]
fn diff_deleting_a_file_is_refused() {
    let reply = "```diff\n--- a/x.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n```";
    assert!(matches!(
        parse_edits(reply),
        Err(ParseError::BadDiff { line: 2, .. })
    ));
}

#[test]
fn hunk_before_header_is_refused() {
    let reply = "```diff\n@@ -1 +1 @@\n-a\n+b\n```";
    assert!(matches!(
        parse_edits(reply),
        Err(ParseError::BadDiff { .. })
    ));
}

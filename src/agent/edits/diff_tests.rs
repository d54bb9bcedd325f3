//! Hunk parsing and content-based placement.

use super::*;

fn hunk(old_start: u32, lines: &[&str]) -> Hunk {
    let lines = lines
        .iter()
        .map(|l| match l.split_at(1) {
            ("+", r) => HunkLine::Add(r.into()),
            ("-", r) => HunkLine::Remove(r.into()),
            (_, r) => HunkLine::Context(r.into()),
        })
        .collect();
    Hunk { old_start, lines }
}

#[test]
fn parses_multiple_files_and_hunks_ignoring_counts() {
    let body = [
        "--- a/a.py",
        "+++ b/a.py",
        "@@ -1,99 +1,99 @@",
        " x",
        "-y",
        "+z",
        "@@ -10 +10 @@",
        "-p",
        "+q",
        "--- a/b.py",
        "+++ b/b.py",
        "@@ @@",
        " k",
        "+l",
    ];
    let files = parse_unified_diff(&body).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].0, "a.py");
    assert_eq!(files[0].1.len(), 2);
    assert_eq!(files[0].1[1].old_start, 10);
    assert_eq!(files[1].1[0].old_start, 0);
}

#[test]
fn paths_without_git_prefixes_are_kept() {
    let files =
        parse_unified_diff(&["--- src/x.rs", "+++ src/x.rs", "@@ -1 +1 @@", "-a", "+b"]).unwrap();
    assert_eq!(files[0].0, "src/x.rs");
}

#[test]
fn places_hunks_by_content_even_with_wrong_line_numbers() {
    let text = "a\nb\nc\nd\ne\n";
    let out = apply_hunks(
        text,
        &[hunk(40, &[" b", "-c", "+C"]), hunk(1, &[" d", "+D"])],
    )
    .unwrap();
    assert_eq!(out, "a\nb\nC\nd\nD\ne\n");
}

#[test]
fn prefers_the_occurrence_nearest_the_stated_line() {
    let text = "x\ny\nx\ny\n";
    assert_eq!(
        apply_hunks(text, &[hunk(3, &["-x", "+X"])]).unwrap(),
        "x\ny\nX\ny\n"
    );
    assert_eq!(
        apply_hunks(text, &[hunk(1, &["-x", "+X"])]).unwrap(),
        "X\ny\nx\ny\n"
    );
}

#[test]
fn keeps_crlf_and_missing_final_newline() {
    assert_eq!(
        apply_hunks("a\r\nb\r\n", &[hunk(1, &["-a", "+A"])]).unwrap(),
        "A\r\nb\r\n"
    );
    assert_eq!(
        apply_hunks("a\nb", &[hunk(2, &["-b", "+B"])]).unwrap(),
        "a\nB"
    );
}

#[test]
fn tolerates_trailing_whitespace_only() {
    assert_eq!(
        apply_hunks("a  \nb\n", &[hunk(1, &["-a", "+A"])]).unwrap(),
        "A\nb\n"
    );
    let err = apply_hunks("  a\n", &[hunk(1, &["-a", "+A"])]).unwrap_err();
    assert_eq!(
        err,
        HunkMismatch {
            hunk: 0,
            old_text: "a\n".into()
        }
    );
}

#[test]
fn second_hunk_mismatch_names_its_index() {
    let err = apply_hunks(
        "a\nb\n",
        &[hunk(1, &["-a", "+A"]), hunk(2, &["-zzz", "+y"])],
    )
    .unwrap_err();
    assert_eq!(err.hunk, 1);
}

#[test]
fn pure_insertion_uses_the_stated_line() {
    assert_eq!(
        apply_hunks("a\nb\n", &[hunk(2, &["+x"])]).unwrap(),
        "a\nx\nb\n"
    );
}

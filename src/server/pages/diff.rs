//! A unified diff rendered as HTML: one block per file, named, lines coloured by kind.

use super::escape;

struct FileDiff<'a> {
    name: String,
    lines: Vec<&'a str>,
}

/// The file a `diff --git a/x b/y` or `+++ b/y` header names.
fn file_name(header: &str) -> Option<String> {
    if let Some(rest) = header.strip_prefix("diff --git ") {
        let b = rest.rsplit_once(" b/").map(|(_, b)| b).unwrap_or(rest);
        return Some(b.to_owned());
    }
    header
        .strip_prefix("+++ ")
        .map(|p| p.strip_prefix("b/").unwrap_or(p).to_owned())
}

fn split(diff: &str) -> Vec<FileDiff<'_>> {
    let mut files: Vec<FileDiff> = Vec::new();
    for line in diff.lines() {
        let starts_file = line.starts_with("diff --git ")
            || (line.starts_with("--- ")
                && files
                    .last()
                    .is_none_or(|f| f.lines.iter().any(|l| l.starts_with("@@"))));
        if starts_file || files.is_empty() {
            files.push(FileDiff {
                name: String::new(),
                lines: Vec::new(),
            });
        }
        let file = files.last_mut().expect("pushed above");
        if file.name.is_empty()
            && let Some(name) = file_name(line)
        {
            file.name = name;
        }
        file.lines.push(line);
    }
    files
}

fn line_class(line: &str) -> &'static str {
    if line.starts_with("+++") || line.starts_with("---") || line.starts_with("diff ") {
        "meta"
    } else if line.starts_with("@@") {
        "hunk"
    } else if line.starts_with('+') {
        "add"
    } else if line.starts_with('-') {
        "del"
    } else {
        "ctx"
    }
}

/// HTML for `diff`, every byte of it escaped.
pub fn render(diff: &str) -> String {
    let mut out = String::new();
    for file in split(diff) {
        let name = if file.name.is_empty() {
            "(changes)"
        } else {
            &file.name
        };
        out.push_str(&format!(
            "<div class=\"file\"><h3 class=\"file-name\">{}</h3><pre class=\"diff\">",
            escape(name)
        ));
        for line in file.lines {
            out.push_str(&format!(
                "<span class=\"{}\">{}\n</span>",
                line_class(line),
                escape(line)
            ));
        }
        out.push_str("</pre></div>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_and_lines_escaped() {
        let diff = "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,3 @@\n def f():\n-    return 1\n+    return \"<img src=x>\"\ndiff --git a/b.txt b/b.txt\n--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-a\n+b\n";
        let html = render(diff);
        assert_eq!(html.matches("class=\"file-name\"").count(), 2);
        assert!(html.contains(">calc.py</h3>") && html.contains(">b.txt</h3>"));
        assert!(
            html.contains("<span class=\"add\">+    return &quot;&lt;img src=x&gt;&quot;\n</span>")
        );
        assert!(html.contains("<span class=\"del\">-    return 1\n</span>"));
        assert!(!html.contains("<img"));
    }

    #[test]
    fn plain_unified_diffs_without_git_headers_split_per_file() {
        let diff = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-1\n+2\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n-1\n+2\n";
        let html = render(diff);
        assert!(html.contains(">x</h3>") && html.contains(">y</h3>"));
    }
}

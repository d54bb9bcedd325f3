//! The issue-body parser: finds the reproduction command and the base branch in the text
//! of a bug report. Pure: text in, values out.
//!
//! Where a repro command may come from (all outside code blocks and HTML comments):
//! - a section under a heading that *is* a repro heading (`### Repro command`,
//!   `### Reproduction command`, `### Steps to reproduce`, ...; also a bold-only line such
//!   as `**To Reproduce**`), taking each shell-like fenced block in it, or, for command
//!   headings, a single-line plain value (the shape GitHub issue forms produce);
//! - a `repro: <command>` line (or `repro:` followed by a fenced block).
//!
//! Headings are matched exactly after normalisation, never by prefix: real issues have
//! headings such as "Reproductive example" whose code is not a command. The first fence
//! of a body is not special either. Different candidates make the result
//! [`Repro::Ambiguous`] so the bot can ask instead of guessing; identical ones count once.
//!
//! The scanner ([`blocks`]) is shared with the slash-command parser. It is linear in the
//! size of the body (bodies can be megabytes) and follows CommonMark where it matters:
//! fences of three or more backticks or tildes, closed by a fence of the same character
//! at least as long (so ```` can contain ```), an unclosed fence runs to the end, and
//! fence content is literal (no comment stripping inside code).

/// Where a repro command was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReproSource {
    /// The plain value under a repro command heading (an issue-form input field).
    FormField,
    /// A fenced block under a repro heading.
    FencedBlock,
    /// A `repro:` line.
    ReproLine,
}

impl ReproSource {
    /// A short phrase for messages: "found in ...".
    pub fn describe(self) -> &'static str {
        match self {
            ReproSource::FormField => "the issue form's repro command field",
            ReproSource::FencedBlock => "the code block under the reproduction heading",
            ReproSource::ReproLine => "the `repro:` line",
        }
    }
}

/// The outcome of looking for a reproduction command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repro {
    /// Exactly one command (several lines form a script, newlines kept).
    Found {
        command: String,
        source: ReproSource,
    },
    /// No candidate at all.
    Missing,
    /// Two or more different candidates, in the order they appear.
    Ambiguous(Vec<String>),
}

/// What the issue body tells us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedIssue {
    pub repro: Repro,
    /// The base branch from a `branch:` line or a "Branch" form field, if any.
    pub branch: Option<String>,
}

/// Parses an issue body (Markdown as GitHub stores it, LF or CRLF).
pub fn parse_issue_body(body: &str) -> ParsedIssue {
    let blocks = blocks(body);
    let mut candidates: Vec<(String, ReproSource)> = Vec::new();
    let mut branch = None;
    let mut section: Option<HeadingKind> = None;
    let mut section_lines: Vec<&str> = Vec::new();
    let mut after_repro_key = false;
    for block in &blocks {
        match block {
            Block::Heading(text) => {
                finish_section(section, &section_lines, &mut candidates, &mut branch);
                section = Some(classify_heading(text));
                section_lines.clear();
                after_repro_key = false;
            }
            Block::Fence { info, content } => {
                let in_repro = matches!(section, Some(HeadingKind::Repro | HeadingKind::Command));
                if (in_repro || after_repro_key) && is_shell_info(info) {
                    let source = if after_repro_key {
                        ReproSource::ReproLine
                    } else {
                        ReproSource::FencedBlock
                    };
                    push_candidate(&mut candidates, script_from_fence(info, content), source);
                }
                // A section with a code block is not a one-line form value.
                section_lines.push(FENCE_MARK);
                after_repro_key = false;
            }
            Block::Line(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                after_repro_key = false;
                match key_value(line) {
                    Some((Key::Repro, "")) => after_repro_key = true,
                    Some((Key::Repro, value)) => {
                        push_candidate(&mut candidates, unquote(value), ReproSource::ReproLine);
                    }
                    Some((Key::Branch, value)) => {
                        if branch.is_none() {
                            branch = valid_branch(unquote(value));
                        }
                    }
                    None => section_lines.push(line),
                }
            }
        }
    }
    finish_section(section, &section_lines, &mut candidates, &mut branch);
    ParsedIssue {
        repro: decide(candidates),
        branch,
    }
}

fn decide(candidates: Vec<(String, ReproSource)>) -> Repro {
    let mut seen = std::collections::HashSet::new();
    let mut distinct: Vec<(String, ReproSource)> = Vec::new();
    for (command, source) in candidates {
        if seen.insert(command.clone()) {
            distinct.push((command, source));
        }
    }
    match distinct.len() {
        0 => Repro::Missing,
        1 => {
            let (command, source) = distinct.remove(0);
            Repro::Found { command, source }
        }
        _ => Repro::Ambiguous(distinct.into_iter().map(|(c, _)| c).collect()),
    }
}

fn push_candidate(
    candidates: &mut Vec<(String, ReproSource)>,
    command: String,
    source: ReproSource,
) {
    let command = command.trim().to_owned();
    if !command.is_empty() {
        candidates.push((command, source));
    }
}

/// At the end of a section, a command heading or branch heading with exactly one plain
/// line (and no code block) is an issue-form field value.
fn finish_section(
    section: Option<HeadingKind>,
    lines: &[&str],
    candidates: &mut Vec<(String, ReproSource)>,
    branch: &mut Option<String>,
) {
    let [line] = lines else { return };
    let value = unquote(line.trim());
    if *line == FENCE_MARK || value.eq_ignore_ascii_case("_No response_") {
        return;
    }
    match section {
        Some(HeadingKind::Command) => push_candidate(candidates, value, ReproSource::FormField),
        Some(HeadingKind::Branch) if branch.is_none() => *branch = valid_branch(value),
        _ => {}
    }
}

/// Stands for a fenced block among a section's lines (a line equal to it would only be
/// ignored as a form value, which is harmless).
const FENCE_MARK: &str = "\0fence";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeadingKind {
    /// A heading naming a command: a fence or a single plain line is the command.
    Command,
    /// A heading about reproducing: only shell-like fences count.
    Repro,
    /// The base branch, as an issue-form field.
    Branch,
    Other,
}

fn classify_heading(text: &str) -> HeadingKind {
    let normalized = normalize_label(text);
    match normalized.as_str() {
        "repro"
        | "repro command"
        | "reproduction command"
        | "reproduce command"
        | "command to reproduce"
        | "reproducer"
        | "reproducer command" => HeadingKind::Command,
        "reproduction" | "steps to reproduce" | "to reproduce" | "how to reproduce"
        | "reproduction steps" | "repro steps" | "steps to repro" | "reproducing" => {
            HeadingKind::Repro
        }
        "branch" | "base branch" | "target branch" => HeadingKind::Branch,
        _ => HeadingKind::Other,
    }
}

/// Lower-cased, emphasis and trailing colon removed, whitespace collapsed.
fn normalize_label(text: &str) -> String {
    let stripped = text
        .trim()
        .trim_matches(|c| matches!(c, '*' | '_' | '`'))
        .trim();
    let stripped = stripped.trim_end_matches(':').trim();
    stripped
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Repro,
    Branch,
}

/// Recognises `repro: value` and `branch: value` lines, also as list items or in bold
/// (`- **Repro:** cmd`, `**branch**: x`). Returns the raw value.
fn key_value(line: &str) -> Option<(Key, &str)> {
    let line = line.trim_start();
    let line = line
        .strip_prefix("- ")
        .or_else(|| line.strip_prefix("* "))
        .unwrap_or(line)
        .trim_start();
    let (key, value) = line.split_once(':')?;
    let key = key.trim().trim_matches('*').trim();
    let value = value.trim_start_matches('*').trim();
    let key = if key.eq_ignore_ascii_case("repro")
        || key.eq_ignore_ascii_case("repro command")
        || key.eq_ignore_ascii_case("reproduction command")
    {
        Key::Repro
    } else if key.eq_ignore_ascii_case("branch") || key.eq_ignore_ascii_case("base branch") {
        Key::Branch
    } else {
        return None;
    };
    Some((key, value))
}

/// Removes one pair of wrapping backticks (inline code) from a value.
fn unquote(value: &str) -> String {
    let value = value.trim();
    if value.trim_matches('`').trim().is_empty() {
        return String::new();
    }
    let ticks = value.len() - value.trim_start_matches('`').len();
    if ticks > 0 && value.len() > 2 * ticks && value.ends_with(&"`".repeat(ticks)) {
        return value[ticks..value.len() - ticks].trim().to_owned();
    }
    value.to_owned()
}

fn valid_branch(value: String) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && !value.starts_with(['-', '/'])
        && !value.ends_with(['/', '.'])
        && !value.contains("..")
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then_some(value)
}

/// Info strings of fences that hold shell commands (the empty one included: an unlabelled
/// fence under a repro heading is a command).
fn is_shell_info(info: &str) -> bool {
    let lang = info.split_whitespace().next().unwrap_or("").to_lowercase();
    matches!(
        lang.as_str(),
        "" | "sh"
            | "bash"
            | "shell"
            | "zsh"
            | "fish"
            | "console"
            | "terminal"
            | "shell-session"
            | "sh-session"
            | "shellsession"
            | "text"
            | "txt"
            | "plain"
            | "plaintext"
            | "cmd"
            | "bat"
            | "powershell"
            | "pwsh"
            | "ps1"
    )
}

/// The command in a fence: trailing spaces trimmed, blank edges dropped, newlines kept.
/// In `console`-style blocks only the `$ `-prompted lines are commands (the rest is output).
fn script_from_fence(info: &str, content: &str) -> String {
    let lines: Vec<&str> = content.lines().map(str::trim_end).collect();
    let prompted: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.trim_start().strip_prefix("$ "))
        .collect();
    let session = matches!(
        info.split_whitespace()
            .next()
            .unwrap_or("")
            .to_lowercase()
            .as_str(),
        "console" | "terminal" | "shell-session" | "sh-session" | "shellsession"
    );
    let chosen = if !prompted.is_empty()
        && (session || prompted.len() == lines.iter().filter(|l| !l.is_empty()).count())
    {
        prompted
    } else {
        lines
    };
    chosen.join("\n").trim_matches('\n').to_owned()
}

/// A Markdown block as far as our parsers care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Block<'a> {
    /// An ATX heading (`## Text`) or a line that is only bold text (`**Text**`).
    Heading(&'a str),
    /// A fenced code block: its info string and literal content (indentation of the
    /// opening fence removed from each line).
    Fence { info: &'a str, content: String },
    /// Any other line, with HTML comments removed (may be empty).
    Line(String),
}

/// Splits a body into blocks in one pass. HTML comments outside code are removed (they
/// may span lines); lines inside a comment do not open fences or headings.
pub(crate) fn blocks(body: &str) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut lines = body.lines();
    let mut in_comment = false;
    while let Some(raw) = lines.next() {
        if in_comment {
            let (text, still) = strip_comments(raw, true);
            in_comment = still;
            out.push(Block::Line(text));
            continue;
        }
        if let Some(open) = fence_open(raw) {
            out.push(read_fence(open, &mut lines));
            continue;
        }
        if let Some(text) = heading(raw) {
            out.push(Block::Heading(text));
            continue;
        }
        let (text, still) = strip_comments(raw, false);
        in_comment = still;
        out.push(Block::Line(text));
    }
    out
}

struct FenceOpen<'a> {
    indent: usize,
    marker: char,
    len: usize,
    info: &'a str,
}

fn fence_open(line: &str) -> Option<FenceOpen<'_>> {
    let rest = line.trim_start_matches(' ');
    let indent = line.len() - rest.len();
    let marker = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.len() - rest.trim_start_matches(marker).len();
    if len < 3 {
        return None;
    }
    let info = rest[len..].trim();
    // CommonMark: a backtick fence's info string may not contain backticks (that is
    // inline code such as ```x``` on one line).
    if marker == '`' && info.contains('`') {
        return None;
    }
    Some(FenceOpen {
        indent,
        marker,
        len,
        info,
    })
}

fn is_fence_close(line: &str, open: &FenceOpen<'_>) -> bool {
    let rest = line.trim_start_matches(' ');
    let len = rest.len() - rest.trim_start_matches(open.marker).len();
    len >= open.len && rest[len..].trim().is_empty()
}

fn read_fence<'a>(open: FenceOpen<'a>, lines: &mut std::str::Lines<'_>) -> Block<'a> {
    let mut content = String::new();
    for line in lines.by_ref() {
        if is_fence_close(line, &open) {
            break;
        }
        let strip = line.len() - line.trim_start_matches(' ').len();
        content.push_str(&line[strip.min(open.indent)..]);
        content.push('\n');
    }
    Block::Fence {
        info: open.info,
        content,
    }
}

/// The text of an ATX heading or of a bold-only line, else `None`.
fn heading(line: &str) -> Option<&str> {
    let rest = line.trim_start_matches(' ');
    if line.len() - rest.len() > 3 {
        return None;
    }
    let hashes = rest.len() - rest.trim_start_matches('#').len();
    if (1..=6).contains(&hashes) {
        let text = &rest[hashes..];
        if !text.is_empty() && !text.starts_with([' ', '\t']) {
            return None;
        }
        return Some(text.trim().trim_end_matches('#').trim());
    }
    let trimmed = rest.trim_end();
    for marker in ["**", "__"] {
        if let Some(inner) = trimmed
            .strip_prefix(marker)
            .and_then(|t| t.strip_suffix(marker))
            && !inner.trim().is_empty()
            && !inner.contains(marker)
        {
            return Some(inner.trim());
        }
    }
    None
}

/// Removes `<!-- ... -->` from a line. `in_comment` says whether the line starts inside a
/// comment; the second value says whether it ends inside one.
fn strip_comments(line: &str, mut in_comment: bool) -> (String, bool) {
    let mut out = String::new();
    let mut rest = line;
    loop {
        if in_comment {
            match rest.find("-->") {
                Some(end) => {
                    rest = &rest[end + 3..];
                    in_comment = false;
                }
                None => return (out, true),
            }
        } else {
            match rest.find("<!--") {
                Some(start) => {
                    out.push_str(&rest[..start]);
                    rest = &rest[start + 4..];
                    in_comment = true;
                }
                None => {
                    out.push_str(rest);
                    return (out, false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn repro(body: &str) -> Repro {
        parse_issue_body(body).repro
    }

    fn found(command: &str, source: ReproSource) -> Repro {
        Repro::Found {
            command: command.into(),
            source,
        }
    }

    /// What GitHub renders for an issue form with an input, a shell textarea and a dropdown.
    const ISSUE_FORM: &str = "### Description\n\nParsing an empty TOML table panics.\n\n\
        ### Repro command\n\ncargo test -p parser empty_table\n\n\
        ### Logs\n\n```shell\nthread 'empty_table' panicked at src/lib.rs:12:5\n```\n\n\
        ### Version\n\n0.4.1\n";

    #[test]
    fn issue_form_plain_value() {
        assert_eq!(
            parse_issue_body(ISSUE_FORM),
            ParsedIssue {
                repro: found("cargo test -p parser empty_table", ReproSource::FormField),
                branch: None
            }
        );
    }

    #[test]
    fn issue_form_textarea_rendered_as_shell() {
        let body = "### What happened?\n\nIt crashes.\n\n### Reproduction command\n\n\
            ```shell\npytest tests/test_dates.py -k leap\n```\n\n### Branch\n\nrelease-2.x\n";
        assert_eq!(
            parse_issue_body(body),
            ParsedIssue {
                repro: found(
                    "pytest tests/test_dates.py -k leap",
                    ReproSource::FencedBlock
                ),
                branch: Some("release-2.x".into())
            }
        );
    }

    #[test]
    fn issue_form_without_response_is_missing() {
        let body = "### Repro command\n\n_No response_\n\n### Branch\n\n_No response_\n";
        assert_eq!(
            parse_issue_body(body),
            ParsedIssue {
                repro: Repro::Missing,
                branch: None
            }
        );
    }

    #[test]
    fn steps_to_reproduce_with_fence() {
        let body = "Describe the bug\n\n## Steps to reproduce\n\nRun this from the repo root:\n\n\
            ```bash\nnpm test -- --grep 'parses dates'\n```\n\nThen look at the output.\n";
        assert_eq!(
            repro(body),
            found(
                "npm test -- --grep 'parses dates'",
                ReproSource::FencedBlock
            )
        );
    }

    #[test]
    fn steps_to_reproduce_prose_is_not_a_command() {
        let body = "## Steps to reproduce\n\n1. Open the app\n2. Click save\n";
        assert_eq!(repro(body), Repro::Missing);
        let body = "### Steps to reproduce\n\nclick the button\n";
        assert_eq!(repro(body), Repro::Missing);
    }

    #[test]
    fn none_at_all() {
        let body = "The CLI prints the wrong version.\n\n```\n$ tool --version\ntool 1.0\n```\n";
        assert_eq!(repro(body), Repro::Missing);
        assert_eq!(repro(""), Repro::Missing);
    }

    #[test]
    fn first_fence_of_the_body_is_not_taken() {
        let body = "```python\nimport lib\nlib.parse('')\n```\n\n\
            ### Repro\n\n```\npython -m pytest tests/test_parse.py\n```\n";
        assert_eq!(
            repro(body),
            found(
                "python -m pytest tests/test_parse.py",
                ReproSource::FencedBlock
            )
        );
    }

    #[test]
    fn heading_must_be_exactly_a_repro_heading() {
        let body = "## Reproductive example\n\n```\nimport numpy as np\nnp.zeros(-1)\n```\n\n\
            ## Reproduction\n\n```sh\npytest tests/test_zeros.py::test_negative\n```\n";
        assert_eq!(
            repro(body),
            found(
                "pytest tests/test_zeros.py::test_negative",
                ReproSource::FencedBlock
            )
        );
        let only_lookalike = "## Reproducible example\n\n```\nmake test\n```\n";
        assert_eq!(repro(only_lookalike), Repro::Missing);
    }

    #[test]
    fn code_in_another_language_is_not_a_command() {
        let body = "### Steps to reproduce\n\n```python\nfrom lib import f\nf()\n```\n";
        assert_eq!(repro(body), Repro::Missing);
    }

    #[test]
    fn repro_line() {
        let body = "Crash on empty input.\n\nrepro: cargo test --test cli empty_input\n";
        assert_eq!(
            repro(body),
            found("cargo test --test cli empty_input", ReproSource::ReproLine)
        );
        let bold = "- **Repro:** `go test ./pkg/... -run TestEmpty`\n";
        assert_eq!(
            repro(bold),
            found("go test ./pkg/... -run TestEmpty", ReproSource::ReproLine)
        );
    }

    #[test]
    fn repro_line_followed_by_fence() {
        let body = "repro:\n\n```sh\nmake deps\nmake test\n```\n";
        assert_eq!(
            repro(body),
            found("make deps\nmake test", ReproSource::ReproLine)
        );
    }

    #[test]
    fn repro_line_inside_code_is_ignored() {
        let body = "Config example:\n\n```yaml\nrepro: not-a-command\nbranch: nope\n```\n";
        assert_eq!(parse_issue_body(body).repro, Repro::Missing);
        assert_eq!(parse_issue_body(body).branch, None);
    }

    #[test]
    fn two_different_candidates_are_ambiguous() {
        let body =
            "repro: pytest tests/a.py\n\n### Steps to reproduce\n\n```\npytest tests/b.py\n```\n";
        assert_eq!(
            repro(body),
            Repro::Ambiguous(vec!["pytest tests/a.py".into(), "pytest tests/b.py".into()])
        );
    }

    #[test]
    fn the_same_candidate_twice_is_not_ambiguous() {
        let body = "repro: `cargo test`\n\n### Repro command\n\n```sh\ncargo test\n```\n";
        assert_eq!(repro(body), found("cargo test", ReproSource::ReproLine));
    }

    #[test]
    fn crlf_bodies() {
        let body = "### Repro command\r\n\r\n```sh\r\npip install -e .\r\npytest -x\r\n```\r\n\r\n\
            branch: main\r\n";
        assert_eq!(
            parse_issue_body(body),
            ParsedIssue {
                repro: found("pip install -e .\npytest -x", ReproSource::FencedBlock),
                branch: Some("main".into())
            }
        );
    }

    #[test]
    fn multi_line_commands_keep_newlines_and_drop_blank_edges() {
        let body = "### Repro\n\n```\n\ncd crates/core   \ncargo test \\\n  --lib\n\n```\n";
        assert_eq!(
            repro(body),
            found(
                "cd crates/core\ncargo test \\\n  --lib",
                ReproSource::FencedBlock
            )
        );
    }

    #[test]
    fn longer_fences_can_contain_shorter_ones() {
        let body =
            "### Repro\n\n````sh\ncat > t.md <<'EOF'\n```\ncode\n```\nEOF\nmdlint t.md\n````\n";
        assert_eq!(
            repro(body),
            found(
                "cat > t.md <<'EOF'\n```\ncode\n```\nEOF\nmdlint t.md",
                ReproSource::FencedBlock
            )
        );
    }

    #[test]
    fn tilde_fences() {
        let body = "### Repro command\n\n~~~bash\nbundle exec rspec spec/parser_spec.rb\n~~~\n";
        assert_eq!(
            repro(body),
            found(
                "bundle exec rspec spec/parser_spec.rb",
                ReproSource::FencedBlock
            )
        );
        // A backtick line does not close a tilde fence.
        let body = "### Repro\n\n~~~\necho '```'\n```\nmake\n~~~\n";
        assert_eq!(
            repro(body),
            found("echo '```'\n```\nmake", ReproSource::FencedBlock)
        );
    }

    #[test]
    fn console_blocks_keep_only_prompted_lines() {
        let body = "### Steps to reproduce\n\n```console\n$ cargo run -- --input x.toml\n\
            error: invalid table\n$ echo $?\n1\n```\n";
        assert_eq!(
            repro(body),
            found(
                "cargo run -- --input x.toml\necho $?",
                ReproSource::FencedBlock
            )
        );
    }

    #[test]
    fn html_comments_are_ignored() {
        let body = "<!-- Please fill in:\nrepro: <your command>\n### Repro command\n-->\n\n\
            ### Repro command\n\n<!-- e.g. cargo test -->\nnpm run test:unit\n";
        assert_eq!(
            repro(body),
            found("npm run test:unit", ReproSource::FormField)
        );
        let inline = "repro: <!-- fill me -->";
        assert_eq!(repro(inline), Repro::Missing);
    }

    #[test]
    fn comment_markers_inside_code_are_literal() {
        let body = "### Repro\n\n```sh\necho '<!-- not a comment -->' | ./render\n```\n";
        assert_eq!(
            repro(body),
            found(
                "echo '<!-- not a comment -->' | ./render",
                ReproSource::FencedBlock
            )
        );
    }

    #[test]
    fn prose_next_to_a_fence_in_a_command_section_is_not_a_second_candidate() {
        let body = "### Repro command\n\nFrom the repository root:\n\n```\nmake test\n```\n";
        assert_eq!(repro(body), found("make test", ReproSource::FencedBlock));
    }

    #[test]
    fn a_later_heading_ends_the_repro_section() {
        let body = "### Steps to reproduce\n\nSee logs.\n\n### Logs\n\n```\nError: boom\n```\n";
        assert_eq!(repro(body), Repro::Missing);
    }

    #[test]
    fn fenced_block_under_bold_heading() {
        let body =
            "**Describe the bug**\nIt panics.\n\n**To Reproduce**\n```\ncargo test -q\n```\n";
        assert_eq!(
            repro(body),
            found("cargo test -q", ReproSource::FencedBlock)
        );
    }

    #[test]
    fn indented_fence_in_a_list_item() {
        let body =
            "## Steps to reproduce\n\n1. Run:\n\n   ```sh\n   make check\n     indented\n   ```\n";
        assert_eq!(
            repro(body),
            found("make check\n  indented", ReproSource::FencedBlock)
        );
    }

    #[test]
    fn unclosed_fence_runs_to_the_end() {
        let body = "### Repro\n\n```\npytest\n\nrepro: other\n";
        assert_eq!(
            repro(body),
            found("pytest\n\nrepro: other", ReproSource::FencedBlock)
        );
    }

    #[test]
    fn inline_triple_backticks_are_not_a_fence() {
        let body = "Run ```make``` then\nrepro: make test\n";
        assert_eq!(repro(body), found("make test", ReproSource::ReproLine));
    }

    #[test]
    fn branch_lines() {
        assert_eq!(
            parse_issue_body("branch: develop").branch,
            Some("develop".into())
        );
        assert_eq!(
            parse_issue_body("Base branch: `release/1.2`").branch,
            Some("release/1.2".into())
        );
        assert_eq!(parse_issue_body("branch: not a branch").branch, None);
        assert_eq!(parse_issue_body("branch: ../etc").branch, None);
        assert_eq!(parse_issue_body("branch: -rf").branch, None);
        assert_eq!(
            parse_issue_body("branch: first\nbranch: second").branch,
            Some("first".into())
        );
    }

    #[test]
    fn unicode_bodies() {
        let body = "## Étapes\n\nLe programme plante 💥 avec « ü ».\n\n\
            ### Repro command\n\n`python -c \"print('héllo ✓')\"`\n\nbranch: fonctionnalité/é\n";
        assert_eq!(
            parse_issue_body(body),
            ParsedIssue {
                repro: found("python -c \"print('héllo ✓')\"", ReproSource::FormField),
                branch: Some("fonctionnalité/é".into())
            }
        );
        // Multi-byte characters next to markers must not split a char.
        for body in ["é```", "#é", "**é**", "<!--é", "ü-->", "repro:é", "~~~é\né"] {
            let _ = parse_issue_body(body);
        }
    }

    #[test]
    fn one_megabyte_bodies_are_fast() {
        let mut body = String::from("### Logs\n\n```\n");
        while body.len() < 1_000_000 {
            body.push_str("at com.example.Parser.parse(Parser.java:42) <!-- ``` \n");
        }
        body.push_str("```\n\n### Repro command\n\n./gradlew test --tests ParserTest\n");
        assert_eq!(
            repro(&body),
            found("./gradlew test --tests ParserTest", ReproSource::FormField)
        );
        // Pathological shapes: many openers, many comments, many headings, one huge line.
        let many_fences = "```\n~~~\n".repeat(70_000);
        assert_eq!(repro(&many_fences), Repro::Missing);
        let many_comments = "<!-- a --> <!-- b\n".repeat(60_000);
        assert_eq!(repro(&many_comments), Repro::Missing);
        let many_headings = "### Repro\n\n".repeat(90_000);
        assert_eq!(repro(&many_headings), Repro::Missing);
        let one_line = "`".repeat(1_000_000);
        assert_eq!(repro(&one_line), Repro::Missing);
        let many_repro_lines = (0..50_000)
            .map(|i| format!("repro: t{i}\n"))
            .collect::<String>();
        assert!(matches!(repro(&many_repro_lines), Repro::Ambiguous(v) if v.len() == 50_000));
    }
}

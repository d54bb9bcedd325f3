//! Untrusted text made safe to write on GitHub. Pure: text in, text out.
//!
//! Everything PatchPilot shows on GitHub mixes its own wording with text somebody else
//! controls: the model's summary (steered by the issue, the repro output and search results),
//! the issue title, the repro command and its output, error messages. The rules here are the
//! one home for making that text harmless; every builder in `messages.rs` uses them:
//! - closing keywords (`fixes #2`, `Closes: owner/repo#3`, `resolved https://…/issues/4`)
//!   that name any issue but the session's own are defused, so merging closes nothing else;
//! - `@user` and `@org/team` mentions are defused, so nobody is pinged;
//! - raw HTML (`<img>`, `<details>`, entities) and Markdown images are escaped in prose;
//! - code and output go in fences longer than any backtick run inside them;
//! - bodies are bounded below GitHub's 65,536-character limit with a note saying what was cut
//!   and where the full text is;
//! - endpoint URLs and addresses are hidden from error text.
//!
//! Defusing inserts U+200B (zero-width space): the text reads the same, but GitHub's mention
//! and closing-keyword patterns no longer match (Dependabot defuses mentions the same way).
//! Code spans and fenced blocks are left as they are (GitHub renders neither HTML nor mentions
//! there), except that closing keywords are defused everywhere.
//!
//! Hand-written rather than a Markdown parser crate: only code-span and fence boundaries are
//! needed, and CommonMark's rules for those are short.

use std::sync::LazyLock;

use regex::Regex;

/// Zero-width space: breaks GitHub's mention and keyword patterns without changing the look.
const ZWSP: char = '\u{200B}';

/// Bodies (comments, PR bodies, check-run `summary` and `text`) are kept under this many
/// bytes. GitHub's limit is 65,536 characters; a byte count is never below the character
/// count (nor below the UTF-16 length), so a byte bound is safe whatever GitHub counts.
pub const BODY_LIMIT: usize = 65_000;

/// Where the full text of a cut body can be read, for the cut note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullTextAt<'a> {
    /// The session's public page.
    SessionPage(&'a str),
    /// No public page: the session's record on the PatchPilot server.
    SessionRecord(&'a str),
}

/// Prose from an untrusted source, for a Markdown body: closing keywords (except for
/// `own_issue`), mentions, raw HTML and images defused.
pub fn untrusted_markdown(text: &str, own_issue: Option<u64>) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for segment in segments(text) {
        match segment {
            Segment::Prose(prose) => {
                let prose = defuse_closing_keywords(prose, own_issue);
                out.push_str(&escape_html(&defuse_mentions(&prose)));
            }
            Segment::Code(code) => out.push_str(&defuse_closing_keywords(code, own_issue)),
        }
    }
    out
}

/// Untrusted text shown as plain text (PR titles, commit messages): closing keywords (except
/// for `own_issue`) and mentions defused. No HTML escaping: GitHub does not render HTML there
/// and an escape would show literally.
pub fn untrusted_plain(text: &str, own_issue: Option<u64>) -> String {
    defuse_mentions(&defuse_closing_keywords(text, own_issue))
}

/// Wraps text in a code fence longer than any backtick run inside it.
pub fn fenced(text: &str) -> String {
    let fence = "`".repeat(longest_backtick_run(text).max(2) + 1);
    format!("{fence}text\n{}\n{fence}\n", text.trim_end())
}

/// Inline code that cannot be broken out of: a backtick run longer than any inside it,
/// padded when the text starts or ends with a backtick, on one line.
pub fn inline_code(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "` `".to_owned();
    }
    let ticks = "`".repeat(longest_backtick_run(&one_line) + 1);
    let pad = if one_line.starts_with('`') || one_line.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{one_line}{pad}{ticks}")
}

fn longest_backtick_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// The last `max_bytes` of `text` (on a char boundary), marked when cut: the end of a
/// build's output is where the failure is.
pub fn tail(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut start = text.len() - max_bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {start} bytes cut …]\n{}", &text[start..])
}

/// `text` bounded to `limit` bytes. When cut, an open code fence is closed and a note says how
/// much was cut and where the full text is.
pub fn bound(text: &str, limit: usize, full: FullTextAt<'_>) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let place = match full {
        FullTextAt::SessionPage(url) => format!("on the [session page]({url})"),
        FullTextAt::SessionRecord(id) => {
            format!("in session `{id}`'s log on the PatchPilot server (ask its operator)")
        }
    };
    // Room for the note and a closing fence (at most the longest run in the text + 1).
    let reserve = 200 + place.len() + longest_backtick_run(text).max(3) + 2;
    let mut end = limit.saturating_sub(reserve);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let kept = &text[..end];
    let mut out = kept.to_owned();
    if let Some(fence) = open_fence(kept) {
        out.push('\n');
        out.push_str(&fence);
    }
    let cut = text.len() - end;
    out.push_str(&format!(
        "\n\n---\n✂️ Cut to fit GitHub's size limit: the last {cut} of {} bytes are not shown. \
         The full text is {place}.",
        text.len()
    ));
    out
}

/// URLs and network addresses in error text, which would tell the public where the operator's
/// model endpoint or other services live. Links to pull requests stay (they are GitHub's).
pub fn redact_operator_details(text: &str) -> String {
    static URL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?i)\b(?:https?|wss?|ftp)://[^\s<>()\[\]"'`]+"#).expect("valid regex")
    });
    static PULL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^https://[^/]+/[\w.-]+/[\w.-]+/pull/\d+$").expect("valid regex")
    });
    static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b|(?i)\blocalhost:\d+\b")
            .expect("valid regex")
    });
    let urls = URL.replace_all(text, |caps: &regex::Captures<'_>| {
        let url = caps[0].trim_end_matches(['.', ',', ';', ':']);
        let rest = &caps[0][url.len()..];
        if PULL.is_match(url) {
            caps[0].to_owned()
        } else {
            format!("[address hidden]{rest}")
        }
    });
    ADDRESS.replace_all(&urls, "[address hidden]").into_owned()
}

/// `fixes #2` → `f\u{200B}ixes #2` unless it is `#own_issue`.
fn defuse_closing_keywords(text: &str, own_issue: Option<u64>) -> String {
    // GitHub's keywords, any case, optional colon; references as `#N`, `GH-N`,
    // `owner/repo#N` or a full issue (or pull) URL on any host.
    static KEYWORD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)\b(close[sd]?|fix(?:e[sd])?|resolve[sd]?)(\s*:?\s*)(#\d+|gh-\d+|[\w.-]+/[\w.-]+#\d+|https?://[^\s/]+/[^\s/]+/[^\s/]+/(?:issues|pull)/\d+)",
        )
        .expect("valid regex")
    });
    KEYWORD
        .replace_all(text, |caps: &regex::Captures<'_>| {
            let reference = &caps[3];
            let own = own_issue
                .is_some_and(|n| reference.strip_prefix('#') == Some(n.to_string().as_str()));
            if own {
                return caps[0].to_owned();
            }
            let keyword = &caps[1];
            let mut chars = keyword.chars();
            let first = chars.next().unwrap_or_default();
            format!("{first}{ZWSP}{}{}{reference}", chars.as_str(), &caps[2])
        })
        .into_owned()
}

/// `@alice` → `@\u{200B}alice` where GitHub would see a mention (not inside a word, so
/// e-mail addresses stay as they are).
fn defuse_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '@'
            && !previous.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '`')
            && chars.peek().is_some_and(|n| n.is_ascii_alphanumeric())
        {
            out.push(ZWSP);
        }
        previous = Some(c);
    }
    out
}

/// Raw HTML and entities shown as text; `![…](…)` images shown as text (they load a remote
/// image for every reader: a tracking pixel).
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '!' if chars.peek() == Some(&'[') => out.push_str("!\\"),
            _ => out.push(c),
        }
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    Prose(&'a str),
    Code(&'a str),
}

/// Splits Markdown into prose and code (fenced blocks and inline code spans), covering the
/// whole text in order.
fn segments(text: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut prose_start = 0;
    let mut fence: Option<(char, usize)> = None;
    let mut fence_start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let opener = fence_opener(line);
        match (fence, opener) {
            (None, Some(open)) => {
                split_inline(&text[prose_start..offset], &mut out);
                fence = Some(open);
                fence_start = offset;
            }
            (Some((c, n)), _) if closes_fence(line, c, n) => {
                out.push(Segment::Code(&text[fence_start..offset + line.len()]));
                fence = None;
                prose_start = offset + line.len();
            }
            _ => {}
        }
        offset += line.len();
    }
    match fence {
        Some(_) => out.push(Segment::Code(&text[fence_start..])),
        None => split_inline(&text[prose_start..], &mut out),
    }
    out
}

/// A fence opening line: up to three spaces, then three or more backticks or tildes.
fn fence_opener(line: &str) -> Option<(char, usize)> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let c = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = trimmed.chars().take_while(|x| *x == c).count();
    // A backtick fence's info string may not contain backticks.
    let info_ok = c == '~' || !trimmed[n..].contains('`');
    (n >= 3 && info_ok).then_some((c, n))
}

fn closes_fence(line: &str, c: char, n: usize) -> bool {
    let trimmed = line.trim_start_matches(' ');
    let run = trimmed.chars().take_while(|x| *x == c).count();
    line.len() - trimmed.len() <= 3 && run >= n && trimmed[run..].trim().is_empty()
}

/// The fence that closes the block `text` ends inside, if it ends inside one.
fn open_fence(text: &str) -> Option<String> {
    let mut fence: Option<(char, usize)> = None;
    for line in text.split_inclusive('\n') {
        match fence {
            None => fence = fence_opener(line),
            Some((c, n)) if closes_fence(line, c, n) => fence = None,
            Some(_) => {}
        }
    }
    fence.map(|(c, n)| c.to_string().repeat(n))
}

/// Inline code spans: a run of n backticks up to the next run of exactly n.
fn split_inline<'a>(text: &'a str, out: &mut Vec<Segment<'a>>) {
    let bytes = text.as_bytes();
    let mut prose_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let open = i;
        while i < bytes.len() && bytes[i] == b'`' {
            i += 1;
        }
        let n = i - open;
        let mut j = i;
        let mut close = None;
        while j < bytes.len() {
            if bytes[j] == b'`' {
                let start = j;
                while j < bytes.len() && bytes[j] == b'`' {
                    j += 1;
                }
                if j - start == n {
                    close = Some(j);
                    break;
                }
            } else {
                j += 1;
            }
        }
        if let Some(end) = close {
            if open > prose_start {
                out.push(Segment::Prose(&text[prose_start..open]));
            }
            out.push(Segment::Code(&text[open..end]));
            prose_start = end;
            i = end;
        }
    }
    if prose_start < text.len() {
        out.push(Segment::Prose(&text[prose_start..]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// Shows the invisible defusing character.
    fn visible(text: &str) -> String {
        text.replace(ZWSP, "⁀")
    }

    #[test]
    fn the_hostile_summary_from_issue_9() {
        let summary = "Closes #7, resolves #1 and fixes: #2. Thanks @alice and @acme/core! \
                       <img src=\"http://x/pixel.png\">";
        assert_eq!(
            visible(&untrusted_markdown(summary, Some(7))),
            "Closes #7, r⁀esolves #1 and f⁀ixes: #2. Thanks @⁀alice and @⁀acme/core! \
             &lt;img src=\"http://x/pixel.png\">"
        );
    }

    #[test]
    fn every_closing_keyword_form_is_defused() {
        let cases = [
            ("close #3", "c⁀lose #3"),
            ("CLOSES #3", "C⁀LOSES #3"),
            ("Closed: #3", "C⁀losed: #3"),
            ("fix #3", "f⁀ix #3"),
            ("Fixed #3", "F⁀ixed #3"),
            ("resolve #3", "r⁀esolve #3"),
            ("Resolved:#3", "R⁀esolved:#3"),
            ("fixes octo/calc#3", "f⁀ixes octo/calc#3"),
            ("fixes GH-3", "f⁀ixes GH-3"),
            (
                "fixes https://github.com/octo/calc/issues/3",
                "f⁀ixes https://github.com/octo/calc/issues/3",
            ),
            (
                "Resolves https://ghe.corp/o/r/issues/3.",
                "R⁀esolves https://ghe.corp/o/r/issues/3.",
            ),
            // Other repositories' issue 7 is not ours.
            ("fixes other/repo#7", "f⁀ixes other/repo#7"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                visible(&untrusted_plain(input, Some(7))),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn words_that_are_not_closing_references_stay() {
        for text in [
            "Fixes #7",
            "fixed the bug in #parse",
            "prefixes #3",
            "closest #3",
            "the fix: a guard",
            "fixes 3 bugs",
        ] {
            assert_eq!(untrusted_plain(text, Some(7)), text);
        }
    }

    #[test]
    fn keywords_in_code_are_defused_but_html_and_mentions_in_code_stay() {
        assert_eq!(
            visible(&untrusted_markdown(
                "Use `Vec<T> @x fixes #2` here <b>",
                None
            )),
            "Use `Vec<T> @x f⁀ixes #2` here &lt;b>"
        );
        let fenced_block = "Before\n```rust\nlet a = b < c; // @bob\n```\nAfter @bob";
        assert_eq!(
            visible(&untrusted_markdown(fenced_block, None)),
            "Before\n```rust\nlet a = b < c; // @bob\n```\nAfter @⁀bob"
        );
        // An unclosed fence runs to the end: all code.
        assert_eq!(
            untrusted_markdown("~~~\n<b>\n", None),
            "~~~\n<b>\n",
            "unclosed fence"
        );
        // An unmatched backtick is literal, so the rest is prose.
        assert_eq!(
            visible(&untrusted_markdown("a ` b <i> @c", None)),
            "a ` b &lt;i> @⁀c"
        );
    }

    #[test]
    fn mentions_outside_words_only() {
        assert_eq!(
            visible(&untrusted_plain(
                "@alice, (@bob) @acme/core mail me@example.com @ 1@",
                None
            )),
            "@⁀alice, (@⁀bob) @⁀acme/core mail me@example.com @ 1@"
        );
    }

    #[test]
    fn html_entities_and_images_are_shown_as_text() {
        assert_eq!(
            untrusted_markdown(
                "<details><summary>x</summary> &#64;alice ![t](http://x/p.png) !ok",
                None
            ),
            "&lt;details>&lt;summary>x&lt;/summary> &amp;#64;alice !\\[t](http://x/p.png) !ok"
        );
        // Our own hidden markers cannot be forged through untrusted text.
        assert!(!untrusted_markdown("<!-- patchpilot:session=s-1 -->", None).contains("<!--"));
    }

    #[test]
    fn fences_and_inline_code_outlast_backticks() {
        assert_eq!(fenced("a ```` b"), "`````text\na ```` b\n`````\n");
        assert_eq!(fenced("plain"), "```text\nplain\n```\n");
        assert_eq!(inline_code("cargo test"), "`cargo test`");
        assert_eq!(inline_code("echo `x`"), "`` echo `x` ``");
        assert_eq!(inline_code("a ``` b"), "````a ``` b````");
        assert_eq!(inline_code("two\nlines"), "`two lines`");
        assert_eq!(inline_code(""), "` `");
    }

    #[test]
    fn tails_are_marked() {
        assert_eq!(tail("abcdef", 3), "[… 3 bytes cut …]\ndef");
        assert_eq!(tail("ééé", 3), "[… 4 bytes cut …]\né");
        assert_eq!(tail("abc", 3), "abc");
    }

    #[test]
    fn bound_keeps_short_text_and_cuts_long_text_with_a_note() {
        let page = FullTextAt::SessionPage("https://pp.example/sessions/s1");
        assert_eq!(bound("short", 100, page), "short");
        let long = format!("intro\n````text\n{}\n````\n", "é".repeat(50_000));
        let cut = bound(&long, BODY_LIMIT, page);
        assert!(cut.len() <= BODY_LIMIT, "{}", cut.len());
        assert!(cut.contains("\n````\n\n---\n✂️ Cut to fit GitHub's size limit: the last "));
        assert!(cut.ends_with(
            "bytes are not shown. The full text is on the [session page](https://pp.example/sessions/s1)."
        ));
        assert_eq!(open_fence(&cut), None, "the cut fence is closed again");
        let record = bound(&"x".repeat(1_000), 500, FullTextAt::SessionRecord("s1"));
        assert!(record.len() <= 500);
        assert!(
            record.ends_with("in session `s1`'s log on the PatchPilot server (ask its operator)."),
            "{record}"
        );
    }

    #[test]
    fn operator_addresses_are_hidden_but_pull_requests_stay() {
        assert_eq!(
            redact_operator_details(
                "error sending request for url (http://10.0.0.5:8080/v1/chat/completions): \
                 connection refused; also https://llm.internal/v1. See \
                 https://github.com/octo/calc/pull/12, or localhost:11434 and 192.168.1.2."
            ),
            "error sending request for url ([address hidden]): connection refused; also \
             [address hidden]. See https://github.com/octo/calc/pull/12, or [address hidden] \
             and [address hidden]."
        );
        assert_eq!(
            redact_operator_details("exit code 3 after 1.2s"),
            "exit code 3 after 1.2s"
        );
    }

    #[test]
    fn segments_cover_the_text() {
        let text = "a `b` c\n```\nd\n```\ne ``f`` g";
        let joined: String = segments(text)
            .iter()
            .map(|s| match s {
                Segment::Prose(p) | Segment::Code(p) => *p,
            })
            .collect();
        assert_eq!(joined, text);
        assert_eq!(
            segments("x `y`"),
            vec![Segment::Prose("x "), Segment::Code("`y`")]
        );
    }
}

//! Identifier-aware tokenisation shared by the query side and the document side of BM25.
//!
//! Source code names things with compound identifiers (`parseConfig`, `parse_config`,
//! `HTTPServerError`), while bug reports mix prose with those identifiers. Each
//! alphanumeric run is therefore emitted as its lower-cased parts (`parse`, `config`)
//! and, when it has more than one part, also as the whole lower-cased identifier
//! (`parseconfig`): the parts give recall, the whole gives precision.
//!
//! Invariants: tokens are ASCII lower-case, at least two bytes long, never pure digits,
//! and never a stop word. Non-ASCII bytes act as separators, so any byte input (including
//! invalid UTF-8) is accepted without allocation per byte.

/// Words too common in prose or code to carry signal.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for", "from",
    "has", "have", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on",
    "or", "so", "that", "the", "then", "there", "this", "to", "was", "we", "when", "which",
    "while", "with", "you", "your", "i", "def", "fn", "let", "var", "const", "return", "self",
    "import", "from", "pub", "use", "mut", "new", "none", "null", "true", "false", "else", "elif",
    "function", "class", "int", "str", "string", "get", "set", "py", "rs", "js", "ts", "go",
    "also", "would", "should", "could", "will", "what", "how", "why", "using", "used", "use",
    "like", "just", "some", "any", "all", "one", "two", "after", "before", "here", "file", "line",
    "lines", "code", "error", "issue", "bug", "expected", "actual", "version", "work", "works",
    "working", "get", "got", "see", "seems", "thanks", "hi", "hello", "please", "http", "https",
    "www", "com", "github", "org", "them", "they", "our", "us", "am", "been", "being", "were",
    "only", "same", "other", "more", "most", "very", "than", "too", "way", "out", "up",
];

/// True when `word` (already lower-case) carries no signal.
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// Calls `emit` for every token of `text`, in order. `scratch` is reused between calls so
/// that scanning a large repository allocates almost nothing.
pub fn for_each_token(text: &[u8], scratch: &mut String, mut emit: impl FnMut(&str)) {
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && (text[i].is_ascii_alphanumeric() || text[i] == b'_') {
            i += 1;
        }
        emit_identifier(&text[start..i], scratch, &mut emit);
    }
}

/// Tokenises `text` into an owned vector (convenient for queries and tests).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut scratch = String::new();
    for_each_token(text.as_bytes(), &mut scratch, |t| out.push(t.to_owned()));
    out
}

/// Splits one identifier (`[A-Za-z0-9_]+`) into its parts and emits them.
fn emit_identifier(ident: &[u8], scratch: &mut String, emit: &mut impl FnMut(&str)) {
    let mut parts = 0usize;
    let mut part_start = 0;
    for pos in 1..=ident.len() {
        if pos == ident.len() || is_boundary(ident, pos) {
            let part = &ident[part_start..pos];
            if emit_part(part, scratch, emit) {
                parts += 1;
            }
            part_start = pos;
        }
    }
    if parts > 1 {
        scratch.clear();
        for &b in ident {
            if b != b'_' {
                scratch.push(b.to_ascii_lowercase() as char);
            }
        }
        if scratch.len() <= 64 {
            emit(scratch);
        }
    }
}

/// A part boundary sits before `pos`: at `_`, after `_`, at a lower→upper change
/// (`parseConfig`), before the last capital of an acronym run (`HTTPServer` → `HTTP|Server`),
/// or between letters and digits.
fn is_boundary(ident: &[u8], pos: usize) -> bool {
    let (prev, cur) = (ident[pos - 1], ident[pos]);
    if cur == b'_' || prev == b'_' {
        return true;
    }
    if prev.is_ascii_lowercase() && cur.is_ascii_uppercase() {
        return true;
    }
    if prev.is_ascii_uppercase()
        && cur.is_ascii_uppercase()
        && ident.get(pos + 1).is_some_and(|n| n.is_ascii_lowercase())
    {
        return true;
    }
    prev.is_ascii_digit() != cur.is_ascii_digit()
}

/// Emits a single part if it is a useful token; returns whether it counted as a part.
fn emit_part(part: &[u8], scratch: &mut String, emit: &mut impl FnMut(&str)) -> bool {
    let part = trim_underscores(part);
    if part.is_empty() {
        return false;
    }
    if part.iter().all(u8::is_ascii_digit) {
        return true;
    }
    scratch.clear();
    scratch.extend(part.iter().map(|b| b.to_ascii_lowercase() as char));
    if scratch.len() >= 2 && scratch.len() <= 40 && !is_stop_word(scratch) {
        emit(scratch);
    }
    true
}

fn trim_underscores(part: &[u8]) -> &[u8] {
    let start = part.iter().position(|&b| b != b'_').unwrap_or(part.len());
    let end = part
        .iter()
        .rposition(|&b| b != b'_')
        .map_or(start, |e| e + 1);
    &part[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_camel_case_and_keeps_whole_identifier() {
        assert_eq!(tokens("parseConfig"), ["parse", "config", "parseconfig"]);
    }

    #[test]
    fn splits_snake_case() {
        assert_eq!(
            tokens("load_user_settings"),
            ["load", "user", "settings", "loadusersettings"]
        );
    }

    #[test]
    fn splits_acronym_runs() {
        // "error" is a stop word, so only the acronym, "parser" and the whole remain.
        assert_eq!(
            tokens("XMLParserError"),
            ["xml", "parser", "xmlparsererror"]
        );
    }

    #[test]
    fn drops_stop_words_digits_and_single_letters() {
        assert_eq!(tokens("the x of 42 is a Parser"), ["parser"]);
    }

    #[test]
    fn splits_letters_from_digits() {
        assert_eq!(tokens("utf8Decode"), ["utf", "decode", "utf8decode"]);
    }

    #[test]
    fn non_ascii_and_punctuation_separate_tokens() {
        assert_eq!(tokens("café→json::Value"), ["caf", "json", "value"]);
    }

    #[test]
    fn leading_and_double_underscores_are_ignored() {
        assert_eq!(tokens("__init__"), ["init"]);
        assert_eq!(tokens("_private__name"), ["private", "name", "privatename"]);
    }

    #[test]
    fn accepts_invalid_utf8() {
        let mut seen = Vec::new();
        let mut scratch = String::new();
        for_each_token(b"ab\xff\xfecd_ef", &mut scratch, |t| {
            seen.push(t.to_owned())
        });
        assert_eq!(seen, ["ab", "cd", "ef", "cdef"]);
    }
}

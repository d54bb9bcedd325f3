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

/// Every stop word, for building lookup tables that answer "stop word?" with one probe.
pub fn stop_words() -> &'static [&'static str] {
    STOP_WORDS
}

/// Parts longer than this are not tokens (hashes, base64, generated names).
const MAX_PART: usize = 40;
/// Whole identifiers longer than this are not tokens.
const MAX_WHOLE: usize = 64;

/// Which rule produced a raw token: parts are subject to the stop-word list, whole
/// compound identifiers are not (`e_lse` yields the whole `else`, which is kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Part,
    Whole,
    /// A maximal run of letters spanning several parts (`parseConfig` in
    /// `parseConfig2`), emitted only for the persistent index (see
    /// [`for_each_index_token`]): a case-insensitive search for a message finds the
    /// files that contain its words through these, whatever their capitalisation.
    LetterRun,
}

/// One step of the token hash (an FxHash-style multiply-rotate). [`token_hash`] and the
/// tokenizer must agree, so both go through this.
#[inline]
fn hash_step(h: u64, b: u8) -> u64 {
    (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// Hash of a lower-case token, equal to the one [`for_each_raw_token`] reports for it.
pub fn token_hash(token: &[u8]) -> u64 {
    token.iter().fold(0, |h, &b| hash_step(h, b))
}

/// Calls `emit(token, hash, kind)` for every token of `text` *before* stop-word
/// filtering: lower-case ASCII bytes from a stack buffer (no allocation), their
/// [`token_hash`], and the rule that produced them. Parts already satisfy the length
/// limits; the caller drops `Part` tokens that are stop words. This is the scanner's hot
/// loop, so the hash is computed while the bytes are lower-cased.
pub fn for_each_raw_token(text: &[u8], emit: impl FnMut(&[u8], u64, TokenKind)) {
    tokenize_bytes::<false>(text, emit);
}

/// [`for_each_raw_token`] plus a [`TokenKind::LetterRun`] for every run of letters that
/// spans more than one part, so that every maximal run of 2–40 ASCII letters in `text`
/// is reported, lower-cased, as a `Part` or a `LetterRun`.
pub fn for_each_index_token(text: &[u8], emit: impl FnMut(&[u8], u64, TokenKind)) {
    tokenize_bytes::<true>(text, emit);
}

fn tokenize_bytes<const RUNS: bool>(text: &[u8], mut emit: impl FnMut(&[u8], u64, TokenKind)) {
    let mut buf = [0u8; MAX_WHOLE];
    let mut i = 0;
    while i < text.len() {
        // An identifier starts at a letter or digit and continues through `_`.
        if !matches!(class(text[i]), LOWER | UPPER | DIGIT) {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && class(text[i]) != OTHER {
            i += 1;
        }
        emit_identifier::<RUNS>(&text[start..i], &mut buf, &mut emit);
    }
}

const OTHER: u8 = 0;
const LOWER: u8 = 1;
const UPPER: u8 = 2;
const DIGIT: u8 = 3;
const UNDERSCORE: u8 = 4;

/// Byte classes, looked up once per byte instead of several `is_ascii_*` tests.
static CLASSES: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_lowercase() {
            LOWER
        } else if c.is_ascii_uppercase() {
            UPPER
        } else if c.is_ascii_digit() {
            DIGIT
        } else if c == b'_' {
            UNDERSCORE
        } else {
            OTHER
        };
        b += 1;
    }
    t
};

#[inline]
fn class(b: u8) -> u8 {
    CLASSES[usize::from(b)]
}

/// Calls `emit` for every token of `text`, in order (stop words removed).
pub fn for_each_token(text: &[u8], mut emit: impl FnMut(&str)) {
    for_each_raw_token(text, |t, _, kind| {
        // Tokens are ASCII by construction.
        let t = std::str::from_utf8(t).unwrap_or_default();
        if kind == TokenKind::Whole || !is_stop_word(t) {
            emit(t);
        }
    });
}

/// Tokenises `text` into an owned vector (convenient for queries and tests).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_token(text.as_bytes(), |t| out.push(t.to_owned()));
    out
}

/// Splits one identifier (`[A-Za-z0-9][A-Za-z0-9_]*`) into its parts and emits them.
///
/// A part boundary sits before `pos`: at `_`, after `_`, at a lower→upper change
/// (`parseConfig`), before the last capital of an acronym run (`HTTPServer` →
/// `HTTP|Server`), or between digits and non-digits. So every part is a lone `_`, all
/// digits, or all letters.
fn emit_identifier<const RUNS: bool>(
    ident: &[u8],
    buf: &mut [u8; MAX_WHOLE],
    emit: &mut impl FnMut(&[u8], u64, TokenKind),
) {
    let n = ident.len();
    let mut parts = 0usize;
    // Current run of letter parts: its start and how many parts it has.
    let (mut run_start, mut run_parts) = (0usize, 0usize);
    let mut part_start = 0;
    let mut prev = class(ident[0]);
    for pos in 1..=n {
        let boundary = pos == n || {
            let cur = class(ident[pos]);
            let b = cur == UNDERSCORE
                || prev == UNDERSCORE
                || (prev == LOWER && cur == UPPER)
                || (prev == UPPER
                    && cur == UPPER
                    && ident.get(pos + 1).is_some_and(|&x| class(x) == LOWER))
                || ((prev == DIGIT) != (cur == DIGIT));
            prev = cur;
            b
        };
        if boundary {
            let part = &ident[part_start..pos];
            if emit_part(part, buf, emit) {
                parts += 1;
            }
            if RUNS {
                if matches!(class(part[0]), LOWER | UPPER) {
                    if run_parts == 0 {
                        run_start = part_start;
                    }
                    run_parts += 1;
                } else {
                    emit_letter_run(&ident[run_start..part_start], run_parts, buf, emit);
                    run_parts = 0;
                }
            }
            part_start = pos;
        }
    }
    if RUNS {
        emit_letter_run(&ident[run_start..n], run_parts, buf, emit);
    }
    if parts > 1 {
        let (mut n, mut h) = (0usize, 0u64);
        for &b in ident {
            if b != b'_' {
                if n == MAX_WHOLE {
                    return;
                }
                let b = b.to_ascii_lowercase();
                buf[n] = b;
                h = hash_step(h, b);
                n += 1;
            }
        }
        emit(&buf[..n], h, TokenKind::Whole);
    }
}

/// Emits a run of letters that spans several parts (one part was emitted as a `Part`).
fn emit_letter_run(
    run: &[u8],
    parts: usize,
    buf: &mut [u8; MAX_WHOLE],
    emit: &mut impl FnMut(&[u8], u64, TokenKind),
) {
    if parts < 2 || !(2..=MAX_PART).contains(&run.len()) {
        return;
    }
    let mut h = 0u64;
    for (slot, &b) in buf.iter_mut().zip(run) {
        let b = b.to_ascii_lowercase();
        *slot = b;
        h = hash_step(h, b);
    }
    emit(&buf[..run.len()], h, TokenKind::LetterRun);
}

/// Emits a single part if its length allows; returns whether it counted as a part
/// (a lone `_` does not; digits count but are never tokens).
#[inline]
fn emit_part(
    part: &[u8],
    buf: &mut [u8; MAX_WHOLE],
    emit: &mut impl FnMut(&[u8], u64, TokenKind),
) -> bool {
    match class(part[0]) {
        UNDERSCORE => false,
        DIGIT => true,
        _ => {
            if (2..=MAX_PART).contains(&part.len()) {
                let mut h = 0u64;
                for (slot, &b) in buf.iter_mut().zip(part) {
                    let b = b.to_ascii_lowercase();
                    *slot = b;
                    h = hash_step(h, b);
                }
                emit(&buf[..part.len()], h, TokenKind::Part);
            }
            true
        }
    }
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
        for_each_token(b"ab\xff\xfecd_ef", |t| seen.push(t.to_owned()));
        assert_eq!(seen, ["ab", "cd", "ef", "cdef"]);
    }

    #[test]
    fn whole_identifiers_are_kept_even_when_they_spell_a_stop_word() {
        assert_eq!(tokens("e_lse"), ["lse", "else"]);
    }

    #[test]
    fn raw_tokens_carry_their_hash_and_kind() {
        let mut seen = Vec::new();
        for_each_raw_token(b"the parseConfig", |t, h, k| {
            assert_eq!(h, token_hash(t));
            seen.push((String::from_utf8(t.to_vec()).unwrap(), k));
        });
        let kinds: Vec<(&str, TokenKind)> = seen.iter().map(|(t, k)| (t.as_str(), *k)).collect();
        assert_eq!(
            kinds,
            [
                ("the", TokenKind::Part),
                ("parse", TokenKind::Part),
                ("config", TokenKind::Part),
                ("parseconfig", TokenKind::Whole)
            ]
        );
    }

    #[test]
    fn index_tokens_add_multi_part_letter_runs() {
        let mut seen = Vec::new();
        for_each_index_token(b"getHTTPResponse_code2x fooBar", |t, h, k| {
            assert_eq!(h, token_hash(t));
            if k == TokenKind::LetterRun {
                seen.push(String::from_utf8(t.to_vec()).unwrap());
            }
        });
        assert_eq!(seen, ["gethttpresponse", "foobar"]);
        let mut plain = Vec::new();
        for_each_raw_token(b"fooBar", |_, _, k| plain.push(k));
        assert!(!plain.contains(&TokenKind::LetterRun));
    }

    #[test]
    fn overlong_parts_and_identifiers_are_dropped() {
        let part = "a".repeat(41);
        assert!(tokens(&part).is_empty());
        let whole = format!("{}_{}", "b".repeat(32), "c".repeat(33));
        assert_eq!(tokens(&whole), ["b".repeat(32), "c".repeat(33)]);
    }
}

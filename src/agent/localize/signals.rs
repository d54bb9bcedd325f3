//! Code-shaped words in bug reports: identifiers worth finding definitions for, and
//! dotted or `::` module paths worth mapping onto files. Pure text → values.
//!
//! A word counts as an identifier only when it looks like code rather than prose:
//! `snake_case`, `camelCase`/`PascalCase` with an inner capital, a call (`name(`), or
//! anything inside backticks. Plain English words ("parser", "Config") are left to BM25.

use std::sync::LazyLock;

use regex::Regex;

use super::tokenize::is_stop_word;

/// Upper bounds keep the definition regex small and the scan fast.
pub const MAX_IDENTIFIERS: usize = 40;
const MAX_MODULE_PATHS: usize = 40;

static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z_][A-Za-z0-9_]*(?P<call>\()?").expect("valid"));
static BACKTICK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"`([^`\n]{1,120})`").expect("valid"));
static MODULE_PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z_][A-Za-z0-9_]*(?:(?:\.|::)[A-Za-z_][A-Za-z0-9_]*)+").expect("valid")
});

/// Names too generic to say where a bug is, even when they look like code.
const GENERIC: &[&str] = &[
    "__init__",
    "__main__",
    "__name__",
    "print",
    "main",
    "len",
    "str",
    "repr",
    "isinstance",
    "super",
    "range",
    "assert",
    "format",
    "unwrap",
    "expect",
    "clone",
    "to_string",
    "println",
    "console",
    "log",
    "require",
    "test",
    "self",
    "this",
    "None",
    "True",
    "False",
    "Some",
    "Ok",
    "Err",
];

/// Identifiers in `text` that look like code, first-seen order, deduplicated.
pub fn code_identifiers(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |w: &str| {
        let w = w.trim_matches('_');
        if w.len() >= 3
            && !GENERIC.contains(&w)
            && !is_stop_word(&w.to_ascii_lowercase())
            && !out.iter().any(|o| o == w)
            && out.len() < MAX_IDENTIFIERS
        {
            out.push(w.to_owned());
        }
    };
    for c in BACKTICK.captures_iter(text) {
        for w in WORD.find_iter(&c[1]) {
            add(w.as_str().trim_end_matches('('));
        }
    }
    for c in WORD.captures_iter(text) {
        let w = c.get(0).map_or("", |m| m.as_str()).trim_end_matches('(');
        if c.name("call").is_some() || looks_like_code(w) {
            add(w);
        }
    }
    out
}

fn looks_like_code(w: &str) -> bool {
    let b = w.as_bytes();
    let inner_underscore = w.trim_matches('_').contains('_');
    let inner_capital = b
        .windows(2)
        .any(|p| p[0].is_ascii_lowercase() && p[1].is_ascii_uppercase());
    inner_underscore || inner_capital
}

/// Dotted (`pkg.mod.Class`) and `::` (`crate::a::b`) paths, excluding things that are
/// clearly not modules (version numbers, domains, file names with extensions handled
/// elsewhere).
pub fn module_paths(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in MODULE_PATH.find_iter(text) {
        let s = m.as_str();
        let end = s.rsplit(['.', ':']).next().unwrap_or("");
        let is_domain = ["com", "org", "io", "net", "html", "md", "txt"].contains(&end);
        if !is_domain && !out.iter().any(|o| o == s) && out.len() < MAX_MODULE_PATHS {
            out.push(s.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_code_shaped_words_only() {
        let text = "Calling load_config() with a Parser object makes parseValue crash; the `Registry` is empty. The parser fails.";
        assert_eq!(
            code_identifiers(text),
            ["Registry", "load_config", "parseValue"]
        );
    }

    #[test]
    fn calls_count_as_identifiers_but_generic_ones_do_not() {
        assert_eq!(
            code_identifiers("run dumps(obj) then print(x) and len(y)"),
            ["dumps"]
        );
    }

    #[test]
    fn module_paths_skip_domains_and_keep_code_paths() {
        let text =
            "See requests.models.Response and crate::store::sqlite, docs at example.com, README.md";
        assert_eq!(
            module_paths(text),
            ["requests.models.Response", "crate::store::sqlite"]
        );
    }
}

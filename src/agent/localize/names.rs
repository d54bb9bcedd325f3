//! Things a bug report names that point at one file more than another: quoted error
//! messages and command-line flags (found in the files that emit or parse them), locale
//! names (the locale's own file), file names, and words that say which non-source kind
//! the issue is about (`zsh`, `TypeScript`, `karma`, `changelog`). Pure text → values;
//! the scanner searches file contents for the probes, ranking decides what they weigh.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::kinds::FileKind;

/// Upper bounds keep the probe regex small and the scan fast.
const MAX_FRAGMENTS: usize = 40;
const MAX_FLAGS: usize = 20;
/// A message fragment needs this many words of two or more letters…
const FRAGMENT_WORDS: usize = 3;
/// …and this many bytes, so that `is not` or `for x` never count as a message.
const FRAGMENT_MIN_BYTES: usize = 16;
const FRAGMENT_MAX_BYTES: usize = 80;

static FENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)```[^\n]*\n(.*?)```").expect("valid"));
static BACKTICK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"`([^`\n]{3,200})`").expect("valid"));
static QUOTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""([^"\n]{8,200})"|“([^”\n]{8,200})”"#).expect("valid"));
static FLAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s`'(=\[])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)").expect("valid")
});
/// Splits a message at quotes, placeholders and punctuation that would not survive a
/// format string: `group id '%s' is not defined` → `group id `, ` is not defined`.
static FRAGMENT_SPLIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"[^A-Za-z0-9 ,/_-]+|\s{2,}"#).expect("valid"));
static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[A-Za-z]{2,}").expect("valid"));
static FILE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|[^A-Za-z0-9_.-])(\.?[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.[A-Za-z][A-Za-z0-9]{0,5})\b")
        .expect("valid")
});
static LOCALE_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"['"`\[(]([a-z]{2,3}(?:[-_][a-zA-Z]{2,4})?)['"`\])]"#).expect("valid")
});

/// English language names and their ISO 639-1 codes, for "the Bulgarian translation".
const LANGUAGES: &[(&str, &str)] = &[
    ("arabic", "ar"),
    ("bulgarian", "bg"),
    ("bengali", "bn"),
    ("catalan", "ca"),
    ("czech", "cs"),
    ("danish", "da"),
    ("german", "de"),
    ("greek", "el"),
    ("spanish", "es"),
    ("estonian", "et"),
    ("persian", "fa"),
    ("finnish", "fi"),
    ("french", "fr"),
    ("hebrew", "he"),
    ("hindi", "hi"),
    ("croatian", "hr"),
    ("hungarian", "hu"),
    ("armenian", "hy"),
    ("indonesian", "id"),
    ("icelandic", "is"),
    ("italian", "it"),
    ("japanese", "ja"),
    ("georgian", "ka"),
    ("kazakh", "kk"),
    ("korean", "ko"),
    ("lithuanian", "lt"),
    ("latvian", "lv"),
    ("malay", "ms"),
    ("norwegian", "nb"),
    ("dutch", "nl"),
    ("polish", "pl"),
    ("portuguese", "pt"),
    ("romanian", "ro"),
    ("russian", "ru"),
    ("slovak", "sk"),
    ("slovenian", "sl"),
    ("serbian", "sr"),
    ("swedish", "sv"),
    ("thai", "th"),
    ("turkish", "tr"),
    ("ukrainian", "uk"),
    ("vietnamese", "vi"),
    ("chinese", "zh"),
    ("occitan", "oc"),
    ("albanian", "sq"),
    ("macedonian", "mk"),
    ("welsh", "cy"),
    ("irish", "ga"),
];
const LOCALE_CONTEXT: &[&str] = &[
    "locale",
    "locales",
    "language",
    "translation",
    "translations",
    "i18n",
    "l10n",
    "lang",
];
const LOCALE_DIRS: &[&str] = &[
    "locale",
    "locales",
    "lang",
    "langs",
    "i18n",
    "l10n",
    "translations",
    "languages",
    "nls",
];

/// Shell and editor words that point at a script of that kind.
const SCRIPT_WORDS: &[(&str, &[&str])] = &[
    ("zsh", &["zsh"]),
    ("bash", &["bash"]),
    ("sh", &["bash", "posix", "dash"]),
    ("fish", &["fish"]),
    ("nu", &["nushell"]),
    ("ps1", &["powershell", "pwsh"]),
    ("psm1", &["powershell", "pwsh"]),
    ("vim", &["vim", "neovim", "nvim"]),
    ("el", &["emacs"]),
    ("bat", &["cmd", "batch"]),
    ("tmux", &["tmux"]),
];
/// Tool names whose configuration files an issue may be about.
const TOOL_STEMS: &[&str] = &[
    "karma",
    "webpack",
    "rollup",
    "babel",
    "eslint",
    "jest",
    "vitest",
    "tsconfig",
    "makefile",
    "dockerfile",
    "cmakelists",
    "gradle",
    "pylintrc",
    "tox",
    "mypy",
    "pytest",
    "phpunit",
    "phpstan",
    "psalm",
    "rubocop",
    "goreleaser",
    "travis",
    "appveyor",
    "jenkinsfile",
    "gemspec",
    "setup",
    "pyproject",
    "cargo",
    "codecov",
    "dependabot",
    "renovate",
];

/// What the issue names, ready for the scanner and the ranker.
#[derive(Debug, Default, Clone)]
pub struct IssueNames {
    /// Lower-case message fragments quoted in the issue, to find in file contents.
    pub fragments: Vec<String>,
    /// Long flag names without dashes (`accept-nth`).
    pub flags: Vec<String>,
    /// Locale codes (`bg`, `zh-cn`), each with the words that named it.
    pub locales: Vec<(String, String)>,
    /// Lower-case file names written in the issue (`key-bindings.zsh`).
    pub files: HashSet<String>,
    /// Lower-case words of the issue (letters only), for kind pointers.
    pub words: HashSet<String>,
}

impl IssueNames {
    pub fn from_text(text: &str) -> Self {
        let words: HashSet<String> = WORD
            .find_iter(text)
            .map(|m| m.as_str().to_ascii_lowercase())
            .collect();
        IssueNames {
            fragments: message_fragments(text),
            flags: flags(text),
            locales: locales(text, &words),
            files: FILE_NAME
                .captures_iter(text)
                .map(|c| c[1].to_ascii_lowercase())
                .collect(),
            words,
        }
    }

    /// Probe literals for the scanner: fragments, then `--flag` and `"flag"` forms.
    /// The index of a probe maps back through [`IssueNames::probe_label`].
    pub fn probes(&self) -> Vec<String> {
        let mut out = self.fragments.clone();
        for f in &self.flags {
            out.push(format!("--{f}"));
            out.push(format!("\"{f}\""));
        }
        out
    }

    /// Whether probe `i` (of [`IssueNames::probes`]) is a flag, and its readable name.
    pub fn probe_label(&self, i: usize) -> (bool, String) {
        if i < self.fragments.len() {
            return (false, self.fragments[i].clone());
        }
        let f = &self.flags[(i - self.fragments.len()) / 2];
        (true, format!("--{f}"))
    }

    /// The locale code this file holds, when the issue names that locale.
    pub fn locale_of(&self, path: &str) -> Option<&(String, String)> {
        let lower = path.to_ascii_lowercase();
        let mut parts: Vec<&str> = lower.split('/').collect();
        let file = parts.pop()?;
        if !parts.iter().any(|d| LOCALE_DIRS.contains(d)) {
            return None;
        }
        let stem = file.split('.').next()?.replace('_', "-");
        self.locales.iter().find(|(code, _)| *code == stem)
    }

    /// Why the issue points at a file of a non-implementation kind, if it does.
    pub fn pointer(&self, path: &str, kind: FileKind) -> Option<String> {
        let lower = path.to_ascii_lowercase();
        let file = lower.rsplit('/').next().unwrap_or(&lower);
        // A failing test is named in every failure report; that does not make the test
        // file, rather than the code under test, the place to fix.
        if kind == FileKind::Test {
            return None;
        }
        if self.files.contains(file) {
            return Some(format!("the issue names `{file}`"));
        }
        let ext = file.rsplit_once('.').map_or("", |(_, e)| e);
        let has = |w: &str| self.words.contains(w);
        match kind {
            FileKind::Script => SCRIPT_WORDS
                .iter()
                .find(|(e, _)| *e == ext)
                .and_then(|(_, ws)| ws.iter().find(|w| has(w)))
                .map(|w| format!("the issue mentions {w}")),
            FileKind::TypeDeclaration => ["typescript", "typings", "tsc", "mypy", "pyright"]
                .iter()
                .find(|w| has(w))
                .map(|w| format!("the issue mentions {w}"))
                .or_else(|| {
                    (has("type") && (has("definition") || has("declaration") || has("definitions")))
                        .then(|| "the issue is about type definitions".to_owned())
                }),
            FileKind::BuildConfig => {
                let stem = file.trim_start_matches('.').split('.').next().unwrap_or("");
                TOOL_STEMS
                    .iter()
                    .find(|t| stem.starts_with(*t) && has(t))
                    .map(|t| format!("the issue mentions {t}"))
            }
            FileKind::Docs => ["documentation", "docs", "readme", "typo", "docstring"]
                .iter()
                .find(|w| has(w))
                .map(|w| format!("the issue mentions {w}")),
            FileKind::Changelog => {
                has("changelog").then(|| "the issue mentions the changelog".to_owned())
            }
            FileKind::Legal => ["license", "licence", "copyright", "manpage"]
                .iter()
                .find(|w| has(w))
                .map(|w| format!("the issue mentions {w}")),
            _ => None,
        }
    }
}

/// The issue without its unticked template checkboxes (`- [ ] fish`): an issue form that
/// lists every shell or OS says nothing about the bug through the options left blank.
pub fn without_unchecked_boxes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let unticked = ["- [ ]", "* [ ]", "+ [ ]"].iter().any(|b| t.starts_with(b));
        if !unticked {
            out.push_str(line);
        }
    }
    out
}

/// Message-like fragments from code blocks, inline code, quotes and error lines.
fn message_fragments(text: &str) -> Vec<String> {
    let mut sources: Vec<&str> = Vec::new();
    for c in FENCE.captures_iter(text) {
        sources.extend(
            c.get(1)
                .map(|m| m.as_str())
                .into_iter()
                .flat_map(str::lines),
        );
    }
    sources.extend(
        BACKTICK
            .captures_iter(text)
            .filter_map(|c| c.get(1).map(|m| m.as_str())),
    );
    for c in QUOTED.captures_iter(text) {
        sources.extend(c.get(1).or_else(|| c.get(2)).map(|m| m.as_str()));
    }
    let mut out: Vec<String> = Vec::new();
    for s in sources {
        for piece in FRAGMENT_SPLIT.split(s) {
            let piece = piece.trim_matches(|c: char| c == ' ' || c == ',' || c == '-' || c == '/');
            if piece.len() < FRAGMENT_MIN_BYTES || WORD.find_iter(piece).count() < FRAGMENT_WORDS {
                continue;
            }
            let mut frag = piece.to_ascii_lowercase();
            if frag.len() > FRAGMENT_MAX_BYTES {
                let mut cut = FRAGMENT_MAX_BYTES;
                while !frag.is_char_boundary(cut) {
                    cut -= 1;
                }
                frag.truncate(frag[..cut].rfind(' ').unwrap_or(cut));
            }
            if !out.contains(&frag) && out.len() < MAX_FRAGMENTS {
                out.push(frag);
            }
        }
    }
    out
}

/// Long flags (`--accept-nth`); `--help` and `--version` exist in every CLI.
fn flags(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in FLAG.captures_iter(text) {
        let f = c[1].to_owned();
        if f.len() >= 2
            && !["help", "version"].contains(&f.as_str())
            && !out.contains(&f)
            && out.len() < MAX_FLAGS
        {
            out.push(f);
        }
    }
    out
}

/// Locale codes named in the issue: language names anywhere, and short quoted codes
/// (`'fr'`, `[de]`) when the issue talks about locales or translations at all.
fn locales(text: &str, words: &HashSet<String>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |code: String, why: String| {
        if !out.iter().any(|(c, _)| *c == code) {
            out.push((code, why));
        }
    };
    for (name, code) in LANGUAGES {
        if words.contains(*name) {
            let mut why = name.to_string();
            why[..1].make_ascii_uppercase();
            add((*code).to_owned(), why);
        }
    }
    if LOCALE_CONTEXT.iter().any(|w| words.contains(*w)) {
        for c in LOCALE_CODE.captures_iter(text) {
            let code = c[1].to_ascii_lowercase().replace('_', "-");
            add(code.clone(), format!("`{code}`"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_messages_become_fragments_split_at_placeholders() {
        let text = "Running it panics:\n```\npanic: group id 'Group1' is not defined for subcommand 'app sub'\n```\nand `adaptive height is not compatible with top/bottom percent padding`";
        let names = IssueNames::from_text(text);
        assert!(
            names
                .fragments
                .contains(&"is not defined for subcommand".to_owned()),
            "{:?}",
            names.fragments
        );
        assert!(names.fragments.contains(
            &"adaptive height is not compatible with top/bottom percent padding".to_owned()
        ));
        assert!(!names.fragments.iter().any(|f| f == "group id"));
    }

    #[test]
    fn unticked_template_boxes_are_dropped() {
        let text = "### Shell\n\n- [ ] bash\n- [x] zsh\n  - [ ] fish\nBody";
        assert_eq!(
            without_unchecked_boxes(text),
            "### Shell\n\n- [x] zsh\nBody"
        );
    }

    #[test]
    fn flags_skip_help_and_version() {
        let names = IssueNames::from_text("`fzf --accept-nth -1 -f one --help` and (--no-sort)");
        assert_eq!(names.flags, ["accept-nth", "no-sort"]);
        assert_eq!(
            names.probes()[names.fragments.len()..],
            ["--accept-nth", "\"accept-nth\"", "--no-sort", "\"no-sort\""]
        );
    }

    #[test]
    fn locales_from_language_names_and_quoted_codes() {
        let names = IssueNames::from_text("Implement ordinal in Bulgarian translation");
        assert_eq!(names.locales, [("bg".to_owned(), "Bulgarian".to_owned())]);
        let names = IssueNames::from_text("week() is wrong for 'fr' locale");
        assert!(names.locale_of("src/locale/fr.js").is_some());
        assert!(names.locale_of("src/plugin/fr.js").is_none());
        // Without any locale context, a quoted two-letter word is just a word.
        assert!(
            IssueNames::from_text("run 'ls' then 'cd'")
                .locales
                .is_empty()
        );
    }

    #[test]
    fn pointers_need_the_issue_to_name_the_kind() {
        let names = IssueNames::from_text("In zsh the alt-c widget runs cd twice (see man fzf)");
        assert!(
            names
                .pointer("shell/key-bindings.zsh", FileKind::Script)
                .is_some()
        );
        assert!(
            names
                .pointer("shell/key-bindings.fish", FileKind::Script)
                .is_none()
        );
        assert!(names.pointer("man/man1/fzf.1", FileKind::Legal).is_none());
        let names = IssueNames::from_text(
            "TypeScript complains: the d.ts for duration is wrong; see karma.conf.js",
        );
        assert!(
            names
                .pointer("types/plugin/duration.d.ts", FileKind::TypeDeclaration)
                .is_some()
        );
        assert!(
            names
                .pointer("karma.conf.js", FileKind::BuildConfig)
                .is_some()
        );
        assert!(names.pointer("LICENSE", FileKind::Legal).is_none());
    }
}

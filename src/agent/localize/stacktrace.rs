//! Extracts source references (`path`, line, symbol) from stack traces, compiler errors
//! and test-runner failure headers, with no I/O.
//!
//! Each supported format has one line-anchored regular expression; a line is matched by
//! the most specific format first and by the generic `path:line` pattern only when no
//! specific format claimed it. Order within the text is kept because "deepest frame"
//! matters: for Python, Node, Java and Go the innermost frame is the one nearest the
//! failure. Paths are returned as written (absolute, relative, Windows or `file://`);
//! mapping them onto tracked files is `resolve`'s job.

use std::sync::LazyLock;

use regex::Regex;

/// Which format produced a reference; used to phrase the reason shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    PythonTraceback,
    RustPanic,
    RustBacktrace,
    RustCompiler,
    NodeStack,
    JavaStack,
    GoStack,
    PytestFailure,
    JestFailure,
    GoTestFailure,
    /// A bare `path:line` (or `path:line:col`) with a source-file extension.
    FileLine,
    /// A path with a source-file extension mentioned without a line number.
    Mention,
}

impl TraceKind {
    /// A human phrase naming the source, e.g. "the Python traceback".
    pub fn describe(self) -> &'static str {
        match self {
            Self::PythonTraceback => "the Python traceback",
            Self::RustPanic => "the Rust panic message",
            Self::RustBacktrace => "the Rust backtrace",
            Self::RustCompiler => "a Rust compiler error",
            Self::NodeStack => "the JavaScript stack trace",
            Self::JavaStack => "the Java/Kotlin stack trace",
            Self::GoStack => "the Go stack trace",
            Self::PytestFailure => "the pytest failure report",
            Self::JestFailure => "the Jest failure report",
            Self::GoTestFailure => "the Go test failure",
            Self::FileLine => "a file:line reference",
            Self::Mention => "the text (file path mentioned)",
        }
    }

    /// True for frames of a call stack, where order means depth.
    pub fn is_stack_frame(self) -> bool {
        matches!(
            self,
            Self::PythonTraceback
                | Self::RustBacktrace
                | Self::NodeStack
                | Self::JavaStack
                | Self::GoStack
        )
    }
}

/// One source reference found in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRef {
    /// The path as written, or for Java a package-derived suffix such as `com/x/Foo.java`.
    pub path: String,
    pub line: Option<u32>,
    pub kind: TraceKind,
    /// The function or test named next to the reference, when the format has one.
    pub symbol: Option<String>,
}

/// Extensions treated as source files by the generic patterns.
const SOURCE_EXT: &str = "py|pyi|pyx|rs|js|jsx|mjs|cjs|ts|tsx|mts|cts|vue|svelte|java|kt|kts|scala|groovy|go|rb|php|c|h|cc|cpp|cxx|hpp|hh|cs|swift|m|mm|ex|exs|erl|hs|ml|lua|pl|pm|sh|toml|yaml|yml|json|cfg|ini";

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static regex is valid")
}

static PYTHON: LazyLock<Regex> =
    LazyLock::new(|| re(r#"File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<sym>[^\s]+))?"#));
static RUST_PANIC: LazyLock<Regex> = LazyLock::new(|| {
    re(r"panicked at (?:'.*', |.*?, )?(?P<path>[^\s:'(]+\.rs):(?P<line>\d+)(?::\d+)?")
});
static RUST_BACKTRACE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*at (?P<path>[^\s()]+\.rs):(?P<line>\d+)(?::\d+)?\s*$"));
static RUST_FRAME_SYMBOL: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^\s*\d+:\s+(?:0x[0-9a-f]+ - )?(?P<sym>[\w:<>$ ]+?)(?:::h[0-9a-f]{16})?\s*$")
});
static RUST_COMPILER: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*-->\s+(?P<path>[^\s:]+):(?P<line>\d+):\d+"));
static NODE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*at (?:(?P<sym>[^\s(][^(]*?) \()?(?:file://)?(?P<path>[^\s():]*[^\s():\d][^\s()]*?):(?P<line>\d+):\d+\)?\s*$",
    )
});
static JAVA: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*at (?:[\w.$/-]+/)?(?P<sym>[\w$.<>]+)\((?P<file>[\w$-]+\.(?:java|kt|scala|groovy|kts)):(?P<line>\d+)\)",
    )
});
static GO_FRAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s+(?P<path>\S+\.go):(?P<line>\d+)(?: \+0x[0-9a-f]+)?\s*$"));
static GO_FUNC: LazyLock<Regex> = LazyLock::new(|| re(r"^(?P<sym>[\w./*()-]+)\((?:[^)]*)\)\s*$"));
static GO_TEST: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s+(?P<path>[\w./-]+_test\.go):(?P<line>\d+): "));
static PYTEST_LOCATION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?P<path>[\w./\\-]+\.py):(?P<line>\d+): (?:in \S+|\w*(?:Error|Exception|Failed|Warning)\b)",
    )
});
static PYTEST_NODEID: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:FAILED|ERROR)\s+(?P<path>[\w./\\-]+\.py)(?:::(?P<sym>[\w\[\]:.-]+))?")
});
static JEST_FAIL: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*FAIL\s+(?P<path>\S+\.(?:js|jsx|ts|tsx|mjs|cjs|mts|cts))\b"));
static FILE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?:^|[\s(\[<'`]|file://)(?P<path>[\w.~/\\@+-]*[\w-]\.(?:{SOURCE_EXT})):(?P<line>\d+)(?::\d+)?"
    ))
});
static MENTION: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?:^|[\s(\[<'`*])(?P<path>(?:[\w.@+-]+/)*[\w@+-][\w.@+-]*\.(?:{SOURCE_EXT}))(?:$|[\s)\]>'`*,.;:!?])"
    ))
});

/// Finds every source reference in `text`, in order of appearance.
pub fn parse_trace_refs(text: &str) -> Vec<TraceRef> {
    let mut out = Vec::new();
    let mut pending_symbol: Option<String> = None;
    for line in text.lines() {
        let before = out.len();
        parse_line(line, &mut pending_symbol, &mut out);
        if out.len() == before {
            pending_symbol = frame_symbol(line);
        } else {
            pending_symbol = None;
        }
    }
    out
}

/// Rust backtraces and Go panics put the function on the line above the location.
fn frame_symbol(line: &str) -> Option<String> {
    if let Some(c) = RUST_FRAME_SYMBOL.captures(line) {
        return Some(c["sym"].trim().to_owned());
    }
    if let Some(c) = GO_FUNC.captures(line) {
        return Some(c["sym"].to_owned());
    }
    None
}

fn push(
    out: &mut Vec<TraceRef>,
    path: &str,
    line: Option<&str>,
    kind: TraceKind,
    sym: Option<String>,
) {
    out.push(TraceRef {
        path: path.to_owned(),
        line: line.and_then(|l| l.parse().ok()),
        kind,
        symbol: sym,
    });
}

fn sym(c: &regex::Captures<'_>) -> Option<String> {
    c.name("sym")
        .map(|m| m.as_str().trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn parse_line(line: &str, pending: &mut Option<String>, out: &mut Vec<TraceRef>) {
    use TraceKind as K;
    if let Some(c) = PYTHON.captures(line) {
        return push(
            out,
            &c["path"],
            Some(&c["line"]),
            K::PythonTraceback,
            sym(&c),
        );
    }
    if let Some(c) = RUST_COMPILER.captures(line) {
        return push(out, &c["path"], Some(&c["line"]), K::RustCompiler, None);
    }
    if let Some(c) = RUST_PANIC.captures(line) {
        return push(out, &c["path"], Some(&c["line"]), K::RustPanic, None);
    }
    if let Some(c) = RUST_BACKTRACE.captures(line) {
        return push(
            out,
            &c["path"],
            Some(&c["line"]),
            K::RustBacktrace,
            pending.take(),
        );
    }
    if let Some(c) = JAVA.captures(line) {
        let symbol = c["sym"].to_owned();
        let path = java_path(&symbol, &c["file"]);
        return push(out, &path, Some(&c["line"]), K::JavaStack, Some(symbol));
    }
    if let Some(c) = NODE.captures(line) {
        return push(out, &c["path"], Some(&c["line"]), K::NodeStack, sym(&c));
    }
    if let Some(c) = GO_TEST.captures(line) {
        return push(out, &c["path"], Some(&c["line"]), K::GoTestFailure, None);
    }
    if let Some(c) = GO_FRAME.captures(line) {
        return push(
            out,
            &c["path"],
            Some(&c["line"]),
            K::GoStack,
            pending.take(),
        );
    }
    if let Some(c) = PYTEST_NODEID.captures(line) {
        return push(out, &c["path"], None, K::PytestFailure, sym(&c));
    }
    if let Some(c) = PYTEST_LOCATION.captures(line) {
        return push(out, &c["path"], Some(&c["line"]), K::PytestFailure, None);
    }
    if let Some(c) = JEST_FAIL.captures(line) {
        return push(out, &c["path"], None, K::JestFailure, None);
    }
    let before = out.len();
    for c in FILE_LINE.captures_iter(line) {
        push(out, &c["path"], Some(&c["line"]), K::FileLine, None);
    }
    if out.len() == before {
        for c in MENTION.captures_iter(line) {
            let path = &c["path"];
            // "e.g." style false positives have no letters before the extension dot.
            if path.split('/').next_back().is_some_and(|f| f.len() > 3) {
                push(out, path, None, K::Mention, None);
            }
        }
    }
}

/// `com.acme.Parser.parse` + `Parser.java` → `com/acme/Parser.java`: the package gives the
/// directory suffix (Kotlin files need not match their class, so only the package is used).
fn java_path(symbol: &str, file: &str) -> String {
    let parts: Vec<&str> = symbol.split('.').collect();
    let package: Vec<&str> = parts
        .iter()
        .take(parts.len().saturating_sub(2))
        .take_while(|p| p.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
        .copied()
        .collect();
    if package.is_empty() {
        file.to_owned()
    } else {
        format!("{}/{file}", package.join("/"))
    }
}

#[cfg(test)]
#[path = "stacktrace_tests.rs"]
mod tests;

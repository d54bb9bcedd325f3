//! Classifies repository paths (tests, vendored, generated, docs) so ranking can
//! down-weight files that are rarely where a bug lives. Pure functions on
//! repo-relative, `/`-separated paths.

/// What kind of file a path is, as far as its name tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathClass {
    Source,
    Test,
    Vendored,
    Generated,
    Docs,
}

impl PathClass {
    /// Multiplier applied to a file's score. Tests stay visible (they name the failing
    /// behaviour) but rank below the code under test.
    pub fn weight(self) -> f64 {
        match self {
            Self::Source => 1.0,
            Self::Test => 0.45,
            Self::Docs => 0.35,
            Self::Vendored | Self::Generated => 0.15,
        }
    }

    /// A short phrase for reasons, or `None` for ordinary source.
    pub fn describe(self) -> Option<&'static str> {
        match self {
            Self::Source => None,
            Self::Test => Some("test file, down-weighted"),
            Self::Docs => Some("documentation, down-weighted"),
            Self::Vendored => Some("vendored code, down-weighted"),
            Self::Generated => Some("generated or minified file, down-weighted"),
        }
    }
}

const VENDOR_DIRS: &[&str] = &[
    "vendor",
    "vendored",
    "third_party",
    "third-party",
    "thirdparty",
    "node_modules",
    "external",
    "_vendor",
    "bower_components",
];
const GENERATED_DIRS: &[&str] = &[
    "dist",
    "build",
    "target",
    "out",
    "generated",
    "__generated__",
    ".next",
    "coverage",
];
const TEST_DIRS: &[&str] = &[
    "test",
    "tests",
    "testing",
    "spec",
    "specs",
    "__tests__",
    "__mocks__",
    "testdata",
    "fixtures",
    "e2e",
];
const DOC_EXT: &[&str] = &["md", "rst", "txt", "adoc", "html", "htm"];
const LOCK_FILES: &[&str] = &[
    "cargo.lock",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "go.sum",
    "composer.lock",
    "gemfile.lock",
    "uv.lock",
];

/// Classifies `path` (repo-relative, `/`-separated).
pub fn classify(path: &str) -> PathClass {
    let lower = path.to_ascii_lowercase();
    let mut parts: Vec<&str> = lower.split('/').collect();
    let file = parts.pop().unwrap_or_default();
    if parts.iter().any(|d| VENDOR_DIRS.contains(d)) {
        return PathClass::Vendored;
    }
    if is_generated_name(file) || parts.iter().any(|d| GENERATED_DIRS.contains(d)) {
        return PathClass::Generated;
    }
    if is_test_name(file) || parts.iter().any(|d| TEST_DIRS.contains(d)) {
        return PathClass::Test;
    }
    let ext = file.rsplit_once('.').map_or("", |(_, e)| e);
    if DOC_EXT.contains(&ext) || parts.first().is_some_and(|d| *d == "docs" || *d == "doc") {
        return PathClass::Docs;
    }
    PathClass::Source
}

fn is_test_name(file: &str) -> bool {
    let stem = file.split('.').next().unwrap_or(file);
    stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_tests")
        || stem.ends_with("_spec")
        || stem == "conftest"
        || stem == "tests"
        || file.contains(".test.")
        || file.contains(".spec.")
        || (file.ends_with("test.java")
            || file.ends_with("tests.java")
            || file.ends_with("test.kt"))
}

fn is_generated_name(file: &str) -> bool {
    LOCK_FILES.contains(&file)
        || file.contains(".min.")
        || file.ends_with(".map")
        || file.ends_with(".pb.go")
        || file.ends_with("_pb2.py")
        || file.ends_with("_pb2_grpc.py")
        || file.contains(".generated.")
        || file.contains(".g.")
        || file.ends_with(".snap")
}

/// Heuristic for minified or machine-written text: very long average line length.
pub fn looks_minified(content: &[u8]) -> bool {
    if content.len() < 2_000 {
        return false;
    }
    let newlines = memchr_count(content);
    content.len() / (newlines + 1) > 300
}

fn memchr_count(content: &[u8]) -> usize {
    content.iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_common_layouts() {
        assert_eq!(classify("src/app/config.py"), PathClass::Source);
        assert_eq!(classify("tests/test_config.py"), PathClass::Test);
        assert_eq!(classify("pkg/config_test.go"), PathClass::Test);
        assert_eq!(classify("src/date.test.ts"), PathClass::Test);
        assert_eq!(classify("src/__tests__/date.ts"), PathClass::Test);
        assert_eq!(classify("app/src/test/java/FooTest.java"), PathClass::Test);
        assert_eq!(classify("vendor/github.com/x/y.go"), PathClass::Vendored);
        assert_eq!(classify("static/js/app.min.js"), PathClass::Generated);
        assert_eq!(classify("Cargo.lock"), PathClass::Generated);
        assert_eq!(classify("api/v1/user.pb.go"), PathClass::Generated);
        assert_eq!(classify("README.md"), PathClass::Docs);
        assert_eq!(classify("docs/conf.py"), PathClass::Docs);
    }

    #[test]
    fn weights_rank_source_first() {
        assert!(PathClass::Source.weight() > PathClass::Test.weight());
        assert!(PathClass::Test.weight() > PathClass::Generated.weight());
    }

    #[test]
    fn minified_detection_uses_line_length() {
        let long_line = vec![b'a'; 5_000];
        assert!(looks_minified(&long_line));
        let normal = b"fn main() {}\n".repeat(400);
        assert!(!looks_minified(&normal));
    }
}

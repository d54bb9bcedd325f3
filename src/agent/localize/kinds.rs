//! What kind of file a path is (implementation, test, type declaration, build or CI
//! config, script or completion, docs, changelog, licence or man page, generated,
//! vendored, other) and which programming language it is written in, from the path
//! alone. Pure functions on repo-relative, `/`-separated paths.
//!
//! Bugs live in implementation files in the repository's own languages; the other kinds
//! rank only when the issue points at them (see `pointers`). Rules are checked in order,
//! first match wins, so `vendor/x/LICENSE` is vendored and `tests/conftest.py` a test.

use serde::Serialize;

/// The kind of a file, as far as its path tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Implementation,
    Test,
    TypeDeclaration,
    BuildConfig,
    Script,
    Docs,
    Changelog,
    Legal,
    Generated,
    Vendored,
    /// Data, fixtures and assets: JSON, CSV, images, `.properties`.
    Other,
}

impl FileKind {
    /// Every kind, in the order of their code in the persistent index.
    pub const ALL: [FileKind; 11] = [
        Self::Implementation,
        Self::Test,
        Self::TypeDeclaration,
        Self::BuildConfig,
        Self::Script,
        Self::Docs,
        Self::Changelog,
        Self::Legal,
        Self::Generated,
        Self::Vendored,
        Self::Other,
    ];

    /// The kind's one-byte code in the persistent index.
    pub fn code(self) -> u8 {
        Self::ALL.iter().position(|&k| k == self).unwrap_or(0) as u8
    }

    /// The kind of an index code; `None` for an unknown code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// Short human label, shown with every result.
    pub fn label(self) -> &'static str {
        match self {
            Self::Implementation => "implementation",
            Self::Test => "test",
            Self::TypeDeclaration => "type declaration",
            Self::BuildConfig => "build or CI config",
            Self::Script => "script or completion",
            Self::Docs => "documentation or example",
            Self::Changelog => "changelog",
            Self::Legal => "licence or man page",
            Self::Generated => "generated or minified",
            Self::Vendored => "vendored",
            Self::Other => "data or asset",
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
    "benches",
    "benchmark",
    "benchmarks",
];
const DOC_DIRS: &[&str] = &[
    "docs",
    "doc",
    "documentation",
    "examples",
    "example",
    "site",
];
const MAN_DIRS: &[&str] = &["man", "man1", "man3", "man5", "man7", "man8"];
const CI_DIRS: &[&str] = &[
    ".github",
    ".circleci",
    ".gitlab",
    ".buildkite",
    ".azure-pipelines",
    "ci",
];
const SCRIPT_DIRS: &[&str] = &[
    "completions",
    "completion",
    "contrib",
    "scripts",
    "script",
    "bin",
    "shell",
    "autoload",
    "plugin",
    "ftplugin",
];
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
/// Whole file names (lower-case) of build, packaging, lint and CI configuration.
const BUILD_NAMES: &[&str] = &[
    "makefile",
    "gnumakefile",
    "cmakelists.txt",
    "dockerfile",
    "containerfile",
    "jenkinsfile",
    "vagrantfile",
    "rakefile",
    "gemfile",
    "gruntfile.js",
    "gulpfile.js",
    "package.json",
    "setup.py",
    "setup.cfg",
    "pyproject.toml",
    "tox.ini",
    "noxfile.py",
    "pylintrc",
    ".pylintrc",
    "mypy.ini",
    ".flake8",
    "pytest.ini",
    "manifest.in",
    "requirements.txt",
    "cargo.toml",
    "build.rs",
    "rust-toolchain",
    "rust-toolchain.toml",
    "rustfmt.toml",
    "clippy.toml",
    "deny.toml",
    "go.mod",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "settings.gradle",
    "settings.gradle.kts",
    "gradlew",
    "gradlew.bat",
    "composer.json",
    "phpunit.xml",
    "phpunit.xml.dist",
    "phpstan.neon",
    "phpstan.neon.dist",
    "psalm.xml",
    "phpcs.xml",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".appveyor.yml",
    "azure-pipelines.yml",
    ".goreleaser.yml",
    ".goreleaser.yaml",
    ".golangci.yml",
    ".editorconfig",
    ".gitattributes",
    ".gitignore",
    ".npmignore",
    ".eslintrc",
    ".eslintignore",
    ".prettierrc",
    ".babelrc",
    ".rubocop.yml",
    ".rspec",
    "tsconfig.json",
    "jsconfig.json",
    ".mocharc.yml",
    "justfile",
    "meson.build",
    "configure.ac",
    "dangerfile.js",
    ".coveragerc",
    "codecov.yml",
    ".codecov.yml",
];
/// File-name prefixes of tool configuration (`karma.conf.js`, `jest.config.ts`).
const BUILD_PREFIXES: &[&str] = &[
    "karma.",
    "jest.config",
    "vitest.config",
    "webpack.",
    "rollup.config",
    "vite.config",
    "babel.config",
    "tsconfig.",
    ".eslintrc",
    ".prettierrc",
    "docker-compose",
    "compose.",
    ".stylelintrc",
    "commitlint.config",
    ".releaserc",
    "release.config",
    "renovate",
    "dependabot",
    "lerna.json",
    "nx.json",
    "turbo.json",
    "tslint",
    "gemspec",
];
const CHANGELOG_STEMS: &[&str] = &[
    "changelog",
    "changes",
    "history",
    "news",
    "release_notes",
    "release-notes",
    "releases",
];
const LEGAL_STEMS: &[&str] = &[
    "license",
    "licence",
    "copying",
    "copyright",
    "notice",
    "unlicense",
    "patents",
    "authors",
    "contributors",
];
const DOC_STEMS: &[&str] = &[
    "readme",
    "contributing",
    "code_of_conduct",
    "security",
    "support",
    "faq",
    "upgrading",
    "migration",
];
const DOC_EXT: &[&str] = &[
    "md", "markdown", "rst", "txt", "adoc", "asciidoc", "html", "htm", "texi", "org", "rdoc", "pod",
];
const CONFIG_EXT: &[&str] = &["toml", "ini", "cfg", "conf", "yml", "yaml", "neon"];
const SHELL_EXT: &[&str] = &[
    "sh", "bash", "zsh", "fish", "nu", "ps1", "psm1", "bat", "cmd", "ksh", "csh", "vim", "el",
    "tmux",
];

/// Programming language of a source file, by extension; `None` for anything else.
pub fn language(path: &str) -> Option<&'static str> {
    let file = path.rsplit('/').next().unwrap_or(path);
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    Some(match ext.as_str() {
        "rs" => "Rust",
        "py" | "pyx" => "Python",
        "go" => "Go",
        "js" | "mjs" | "cjs" | "jsx" | "vue" | "svelte" => "JavaScript",
        "ts" | "tsx" | "mts" | "cts" => "TypeScript",
        "java" => "Java",
        "kt" | "kts" => "Kotlin",
        "scala" => "Scala",
        "rb" => "Ruby",
        "php" => "PHP",
        "c" | "h" => "C",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => "C++",
        "cs" => "C#",
        "swift" => "Swift",
        "m" | "mm" => "Objective-C",
        "lua" => "Lua",
        "ex" | "exs" => "Elixir",
        "erl" => "Erlang",
        "hs" => "Haskell",
        "ml" | "mli" => "OCaml",
        "clj" | "cljs" => "Clojure",
        "dart" => "Dart",
        "pl" | "pm" => "Perl",
        "zig" => "Zig",
        "jl" => "Julia",
        "r" => "R",
        _ => return None,
    })
}

/// Classifies `path` (repo-relative, `/`-separated) by its name and directories.
pub fn classify(path: &str) -> FileKind {
    let lower = path.to_ascii_lowercase();
    let mut dirs: Vec<&str> = lower.split('/').collect();
    let file = dirs.pop().unwrap_or_default();
    let (stem, ext) = match file.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, e),
        _ => (file, ""),
    };
    let in_dir = |set: &[&str]| dirs.iter().any(|d| set.contains(d));
    if in_dir(VENDOR_DIRS) {
        return FileKind::Vendored;
    }
    if is_generated_name(file) || in_dir(GENERATED_DIRS) {
        return FileKind::Generated;
    }
    if LEGAL_STEMS.contains(&stem) || LEGAL_STEMS.contains(&file) || is_man_page(&dirs, ext) {
        return FileKind::Legal;
    }
    if CHANGELOG_STEMS.contains(&stem)
        || CHANGELOG_STEMS.contains(&file)
        || in_dir(&["changelog.d", "changes", "newsfragments"])
    {
        return FileKind::Changelog;
    }
    if BUILD_NAMES.contains(&file)
        || BUILD_PREFIXES.iter().any(|p| file.starts_with(p))
        || ext == "gemspec"
        || in_dir(CI_DIRS)
        || (dirs.first() == Some(&"build") && !dirs.is_empty())
    {
        return FileKind::BuildConfig;
    }
    if is_test_name(file) || in_dir(TEST_DIRS) {
        return FileKind::Test;
    }
    if file.ends_with(".d.ts") || file.ends_with(".d.mts") || ext == "pyi" || ext == "rbi" {
        return FileKind::TypeDeclaration;
    }
    if DOC_EXT.contains(&ext) || DOC_STEMS.contains(&stem) || in_dir(DOC_DIRS) {
        return FileKind::Docs;
    }
    if SHELL_EXT.contains(&ext)
        || (ext.is_empty() && in_dir(SCRIPT_DIRS))
        || (dirs.is_empty() && ["install", "uninstall"].contains(&file))
    {
        return FileKind::Script;
    }
    if language(path).is_some() {
        return FileKind::Implementation;
    }
    if CONFIG_EXT.contains(&ext) && dirs.is_empty() {
        return FileKind::BuildConfig;
    }
    FileKind::Other
}

fn is_man_page(dirs: &[&str], ext: &str) -> bool {
    let section = ext.len() == 1 && ext.as_bytes()[0].is_ascii_digit();
    section || dirs.iter().any(|d| MAN_DIRS.contains(d))
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
        || file.ends_with("test.java")
        || file.ends_with("tests.java")
        || file.ends_with("test.kt")
        || file.ends_with("test.php")
        || file.ends_with("tests.cs")
        || file.ends_with("test.cs")
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
    let newlines = content.iter().filter(|&&b| b == b'\n').count();
    content.len() / (newlines + 1) > 300
}

/// The repository's main languages: those of at least a fifth as many implementation
/// files as the most common one, most common first. Scripts, tests and docs do not vote.
pub fn main_languages<'a>(
    files: impl IntoIterator<Item = (&'a str, FileKind)>,
) -> Vec<&'static str> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for (path, kind) in files {
        if kind != FileKind::Implementation {
            continue;
        }
        if let Some(lang) = language(path) {
            match counts.iter_mut().find(|(l, _)| *l == lang) {
                Some(c) => c.1 += 1,
                None => counts.push((lang, 1)),
            }
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top = counts.first().map_or(0, |c| c.1);
    counts
        .into_iter()
        .filter(|&(_, n)| n * 5 >= top)
        .map(|(l, _)| l)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::FileKind::*;
    use super::*;

    #[test]
    fn classifies_the_kinds_real_repositories_have() {
        let cases = [
            ("src/app/config.py", Implementation),
            ("src/terminal.go", Implementation),
            ("tests/test_config.py", Test),
            ("pkg/config_test.go", Test),
            ("src/date.test.ts", Test),
            ("src/__tests__/date.ts", Test),
            ("app/src/test/java/FooTest.java", Test),
            ("tests/Carbon/DiffTest.php", Test),
            ("types/plugin/duration.d.ts", TypeDeclaration),
            ("karma.sauce.conf.js", BuildConfig),
            ("build/esm.js", BuildConfig),
            (".github/workflows/ci.yml", BuildConfig),
            ("pylintrc", BuildConfig),
            ("Makefile", BuildConfig),
            ("shell/key-bindings.fish", Script),
            ("plugin/fzf.vim", Script),
            ("bin/fzf-tmux", Script),
            ("install", Script),
            ("README.md", Docs),
            ("docs/conf.py", Docs),
            ("CHANGELOG.md", Changelog),
            ("ChangeLog", Changelog),
            ("LICENSE", Legal),
            ("man/man1/fzf.1", Legal),
            ("doc/fd.1", Legal),
            ("vendor/github.com/x/y.go", Vendored),
            ("static/js/app.min.js", Generated),
            ("Cargo.lock", Generated),
            ("api/v1/user.pb.go", Generated),
            ("src/main/resources/entities.properties", Other),
            ("src/locale/bg.js", Implementation),
        ];
        for (path, kind) in cases {
            assert_eq!(classify(path), kind, "{path}");
        }
    }

    #[test]
    fn languages_come_from_extensions() {
        assert_eq!(language("src/Foo.java"), Some("Java"));
        assert_eq!(language("lib/sinatra/base.rb"), Some("Ruby"));
        assert_eq!(language("src/Carbon/Carbon.php"), Some("PHP"));
        assert_eq!(language("README"), None);
        assert_eq!(language("x.json"), None);
    }

    #[test]
    fn main_languages_ignore_minor_and_non_implementation_files() {
        let mut files: Vec<(String, FileKind)> = (0..40)
            .map(|i| (format!("src/f{i}.go"), Implementation))
            .collect();
        files.push(("src/helper.py".into(), Implementation));
        files.push(("shell/a.zsh".into(), Script));
        for i in 0..30 {
            files.push((format!("test/t{i}.rb"), Test));
        }
        let langs = main_languages(files.iter().map(|(p, k)| (p.as_str(), *k)));
        assert_eq!(langs, ["Go"]);
    }

    #[test]
    fn minified_detection_uses_line_length() {
        assert!(looks_minified(&vec![b'a'; 5_000]));
        assert!(!looks_minified(&b"fn main() {}\n".repeat(400)));
    }
}

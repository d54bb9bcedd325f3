//! End-to-end localisation on small, realistic repositories in temp dirs.

use std::path::Path;

use patchpilot::agent::localize::{Candidate, LocalizeInput, bm25_baseline, localize};

fn write(root: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let full = root.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, c).unwrap();
    }
}

fn paths(found: &[Candidate]) -> Vec<&str> {
    found.iter().map(|c| c.path.as_str()).collect()
}

fn python_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (".gitignore", "build/\n.venv/\n"),
            ("src/shop/__init__.py", ""),
            (
                "src/shop/config.py",
                "import yaml\n\n\ndef load_config(path):\n    with open(path) as f:\n        raw = yaml.safe_load(f)\n    return parse_config(raw)\n\n\ndef parse_config(raw):\n    return {'currency': raw['currency']}\n",
            ),
            (
                "src/shop/invoice.py",
                "from .config import load_config\n\n\nclass InvoiceStore:\n    def __init__(self, path):\n        self.config = load_config(path)\n",
            ),
            (
                "src/shop/cli.py",
                "import click\nfrom .invoice import InvoiceStore\n\n@click.command()\ndef main():\n    InvoiceStore('shop.yml')\n",
            ),
            (
                "tests/test_config.py",
                "from shop.config import load_config, parse_config\n\ndef test_parse_config():\n    assert parse_config({'currency': 'EUR'})\n",
            ),
            (
                "docs/config.md",
                "# Config\nThe config file needs a currency. parse_config load_config config config config\n",
            ),
            (
                ".venv/lib/python3.12/site-packages/yaml/__init__.py",
                "def safe_load(f):\n    pass\n",
            ),
            (
                "build/lib/shop/config.py",
                "def load_config(path):\n    pass\n",
            ),
        ],
    );
    dir
}

#[test]
fn python_traceback_from_an_installed_package_points_at_the_source() {
    let dir = python_repo();
    let issue = r#"KeyError when the config has no currency

Traceback (most recent call last):
  File "/home/me/.venv/bin/shop", line 8, in <module>
    sys.exit(main())
  File "/home/me/.venv/lib/python3.12/site-packages/shop/cli.py", line 6, in main
    InvoiceStore('shop.yml')
  File "/home/me/.venv/lib/python3.12/site-packages/shop/invoice.py", line 6, in __init__
    self.config = load_config(path)
  File "/home/me/.venv/lib/python3.12/site-packages/shop/config.py", line 7, in load_config
    return parse_config(raw)
  File "/home/me/.venv/lib/python3.12/site-packages/shop/config.py", line 11, in parse_config
    return {'currency': raw['currency']}
KeyError: 'currency'
"#;
    let found = localize(
        dir.path(),
        &LocalizeInput {
            issue_text: issue,
            failure_output: None,
            limit: 5,
        },
    )
    .unwrap();
    assert_eq!(
        paths(&found)[..3],
        [
            "src/shop/config.py",
            "src/shop/invoice.py",
            "src/shop/cli.py"
        ]
    );
    let top = &found[0];
    assert!(
        top.reasons
            .iter()
            .any(|r| r.starts_with("named in the Python traceback (line 11)")),
        "{:?}",
        top.reasons
    );
    assert!(
        top.lines.contains(&7) && top.lines.contains(&11),
        "{:?}",
        top.lines
    );
    assert!(
        !paths(&found)
            .iter()
            .any(|p| p.starts_with("build/") || p.starts_with(".venv/"))
    );
}

#[test]
fn failing_pytest_output_ranks_code_under_test_above_the_test() {
    let dir = python_repo();
    let failure = "FAILED tests/test_config.py::test_parse_config - KeyError: 'currency'\n\nsrc/shop/config.py:11: KeyError\n";
    let input = LocalizeInput {
        issue_text: "parse_config crashes",
        failure_output: Some(failure),
        limit: 5,
    };
    let found = localize(dir.path(), &input).unwrap();
    assert_eq!(found[0].path, "src/shop/config.py", "{found:#?}");
    let test_rank = paths(&found)
        .iter()
        .position(|p| *p == "tests/test_config.py")
        .unwrap();
    assert!(test_rank > 0);
    assert!(
        found[test_rank]
            .reasons
            .iter()
            .any(|r| r.contains("test: ranked below implementation files"))
    );
}

#[test]
fn rust_panic_and_compiler_errors_map_to_files() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("Cargo.toml", "[package]\nname = \"lexer\"\n"),
            ("src/lib.rs", "pub mod lexer;\npub mod token;\n"),
            ("src/lexer.rs", "pub fn next_token() {}\n"),
            ("src/token.rs", "pub enum Token {}\n"),
            ("target/debug/build.rs", "fn main() {}\n"),
        ],
    );
    let failure = "---- tests::parses_empty stdout ----\nthread 'tests::parses_empty' panicked at src/lexer.rs:1:24:\nindex out of bounds\n";
    let found = localize(
        dir.path(),
        &LocalizeInput {
            issue_text: "lexer panics on empty input",
            failure_output: Some(failure),
            limit: 3,
        },
    )
    .unwrap();
    assert_eq!(found[0].path, "src/lexer.rs");
    assert_eq!(found[0].lines, [1]);
}

#[test]
fn prose_only_issue_uses_definitions_and_bm25() {
    let dir = python_repo();
    let issue = "`InvoiceStore` ignores the path it is given";
    let found = localize(
        dir.path(),
        &LocalizeInput {
            issue_text: issue,
            failure_output: None,
            limit: 3,
        },
    )
    .unwrap();
    assert_eq!(found[0].path, "src/shop/invoice.py");
    assert!(
        found[0]
            .reasons
            .iter()
            .any(|r| r.starts_with("defines `InvoiceStore` (line 4)")),
        "{:?}",
        found[0].reasons
    );
}

#[test]
fn baseline_is_plain_bm25_without_down_weighting() {
    let dir = python_repo();
    let found = bm25_baseline(dir.path(), "config currency parse_config load_config", 10).unwrap();
    assert!(paths(&found).contains(&"docs/config.md"));
    assert!(found.iter().all(|c| c.lines.is_empty()));
}

#[test]
fn missing_repository_is_a_clear_error() {
    let err = localize(
        Path::new("/nonexistent/repo"),
        &LocalizeInput {
            issue_text: "x",
            failure_output: None,
            limit: 3,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/repo"), "{err}");
}

//! Realistic samples of every supported format.

use super::*;

fn refs(text: &str) -> Vec<(String, Option<u32>, TraceKind)> {
    parse_trace_refs(text)
        .into_iter()
        .map(|r| (r.path, r.line, r.kind))
        .collect()
}

#[test]
fn python_traceback_frames_in_order_with_functions() {
    let text = r#"Traceback (most recent call last):
  File "/home/u/proj/app/cli.py", line 12, in <module>
    main()
  File "/home/u/proj/app/config.py", line 42, in load_config
    return parse(raw)
  File "/usr/lib/python3.11/site-packages/yaml/__init__.py", line 81, in load
    return loader.get_single_data()
ValueError: bad indentation
"#;
    let r = parse_trace_refs(text);
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].path, "/home/u/proj/app/cli.py");
    assert_eq!(r[1].line, Some(42));
    assert_eq!(r[1].symbol.as_deref(), Some("load_config"));
    assert_eq!(r[2].kind, TraceKind::PythonTraceback);
}

#[test]
fn rust_panic_new_and_old_formats() {
    let new = "thread 'main' panicked at src/parser.rs:88:13:\nindex out of bounds";
    assert_eq!(
        refs(new),
        [("src/parser.rs".into(), Some(88), TraceKind::RustPanic)]
    );
    let old = "thread 'tests::it_works' panicked at 'assertion failed: `(left == right)`', src/lib.rs:10:9";
    assert_eq!(
        refs(old),
        [("src/lib.rs".into(), Some(10), TraceKind::RustPanic)]
    );
}

#[test]
fn rust_backtrace_frames_take_the_symbol_from_the_line_above() {
    let text = "stack backtrace:
   0: rust_begin_unwind
             at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/std/src/panicking.rs:665:5
   1: mycrate::config::load
             at ./src/config.rs:27:18
   2: mycrate::main
             at ./src/main.rs:5:5
";
    let r = parse_trace_refs(text);
    assert_eq!(r.len(), 3);
    assert_eq!(r[1].path, "./src/config.rs");
    assert_eq!(r[1].line, Some(27));
    assert_eq!(r[1].symbol.as_deref(), Some("mycrate::config::load"));
    assert_eq!(r[2].kind, TraceKind::RustBacktrace);
}

#[test]
fn rust_compiler_error_arrow() {
    let text = "error[E0308]: mismatched types
 --> src/server/routes.rs:31:20
   |
31 |     let port: u16 = \"8080\";
   |               ---   ^^^^^^ expected `u16`, found `&str`
";
    assert_eq!(
        refs(text),
        [(
            "src/server/routes.rs".into(),
            Some(31),
            TraceKind::RustCompiler
        )]
    );
}

#[test]
fn node_stack_with_and_without_function_names() {
    let text = "TypeError: Cannot read properties of undefined (reading 'map')
    at renderList (/Users/dev/app/src/components/List.jsx:14:23)
    at Object.<anonymous> (/Users/dev/app/test/list.test.js:9:5)
    at node:internal/modules/cjs/loader:1105:14
    at file:///srv/app/lib/server.mjs:77:11
";
    let r = parse_trace_refs(text);
    assert_eq!(r[0].path, "/Users/dev/app/src/components/List.jsx");
    assert_eq!(r[0].symbol.as_deref(), Some("renderList"));
    assert_eq!(r[1].line, Some(9));
    assert_eq!(r[2].path, "node:internal/modules/cjs/loader");
    assert_eq!(r[3].path, "/srv/app/lib/server.mjs");
    assert!(r.iter().all(|x| x.kind == TraceKind::NodeStack));
}

#[test]
fn java_and_kotlin_frames_become_package_paths() {
    let text = "Exception in thread \"main\" java.lang.NullPointerException
\tat com.acme.billing.InvoiceService.total(InvoiceService.java:57)
\tat com.acme.App.main(App.java:12)
\tat java.base/java.lang.Thread.run(Thread.java:833)
Caused by: x
\tat org.demo.util.StringsKt.pad(Strings.kt:4)
";
    let r = refs(text);
    assert_eq!(
        r[0],
        (
            "com/acme/billing/InvoiceService.java".into(),
            Some(57),
            TraceKind::JavaStack
        )
    );
    assert_eq!(r[1].0, "com/acme/App.java");
    assert_eq!(r[2].0, "java/lang/Thread.java");
    assert_eq!(r[3].0, "org/demo/util/Strings.kt");
}

#[test]
fn go_panic_frames_with_functions() {
    let text = "panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a2b1c]

goroutine 1 [running]:
github.com/acme/tool/internal/store.(*DB).Get(0x0, {0x52c1a0, 0x3})
\t/home/ci/work/tool/internal/store/db.go:44 +0x1c
main.main()
\t/home/ci/work/tool/cmd/tool/main.go:19 +0x85
exit status 2
";
    let r = parse_trace_refs(text);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].path, "/home/ci/work/tool/internal/store/db.go");
    assert_eq!(r[0].line, Some(44));
    assert_eq!(
        r[0].symbol.as_deref(),
        Some("github.com/acme/tool/internal/store.(*DB).Get")
    );
    assert_eq!(r[1].kind, TraceKind::GoStack);
}

#[test]
fn go_test_failure_lines() {
    let text = "--- FAIL: TestParse (0.00s)\n    parse_test.go:21: got 3, want 4\nFAIL\n";
    assert_eq!(
        refs(text),
        [("parse_test.go".into(), Some(21), TraceKind::GoTestFailure)]
    );
}

#[test]
fn pytest_short_summary_and_locations() {
    let text = "=================================== FAILURES ===================================
______________________________ test_round_trip _______________________________

    def test_round_trip():
>       assert dumps(loads(\"a: 1\")) == \"a: 1\\n\"
E       AssertionError: assert 'a: 1' == 'a: 1\\n'

tests/test_codec.py:8: AssertionError
src/codec/core.py:120: in dumps
=========================== short test summary info ============================
FAILED tests/test_codec.py::test_round_trip - AssertionError: assert 'a: 1' == 'a: 1\\n'
";
    let r = refs(text);
    assert_eq!(
        r[0],
        (
            "tests/test_codec.py".into(),
            Some(8),
            TraceKind::PytestFailure
        )
    );
    assert_eq!(
        r[1],
        (
            "src/codec/core.py".into(),
            Some(120),
            TraceKind::PytestFailure
        )
    );
    assert_eq!(
        r[2],
        ("tests/test_codec.py".into(), None, TraceKind::PytestFailure)
    );
    assert_eq!(
        parse_trace_refs(text)[2].symbol.as_deref(),
        Some("test_round_trip")
    );
}

#[test]
fn jest_failure_header_and_frames() {
    let text = " FAIL  src/utils/date.test.ts
  ● formatDate › pads months

    expect(received).toBe(expected) // Object.is equality

      at Object.<anonymous> (src/utils/date.test.ts:7:30)
";
    let r = refs(text);
    assert_eq!(
        r[0],
        (
            "src/utils/date.test.ts".into(),
            None,
            TraceKind::JestFailure
        )
    );
    assert_eq!(
        r[1],
        (
            "src/utils/date.test.ts".into(),
            Some(7),
            TraceKind::NodeStack
        )
    );
}

#[test]
fn cargo_test_failure_panic_inside_test_output() {
    let text = "---- tests::parses_empty stdout ----
thread 'tests::parses_empty' panicked at src/lexer.rs:212:9:
assertion `left == right` failed
failures:
    tests::parses_empty
test result: FAILED. 11 passed; 1 failed";
    assert_eq!(
        refs(text),
        [("src/lexer.rs".into(), Some(212), TraceKind::RustPanic)]
    );
}

#[test]
fn generic_file_line_and_mentions_in_prose() {
    let text =
        "The bug is in `lib/router.js:55` I think; see also src/app/models.py and the README.";
    let r = refs(text);
    assert_eq!(r, [("lib/router.js".into(), Some(55), TraceKind::FileLine)]);
    let r = refs("I looked at src/app/models.py and utils.rs, not e.g. this.");
    assert_eq!(
        r,
        [
            ("src/app/models.py".into(), None, TraceKind::Mention),
            ("utils.rs".into(), None, TraceKind::Mention)
        ]
    );
}

#[test]
fn windows_paths_are_kept_as_written() {
    let text = r#"  File "C:\Users\me\proj\pkg\io.py", line 3, in read"#;
    assert_eq!(refs(text)[0].0, r"C:\Users\me\proj\pkg\io.py");
}

#[test]
fn prose_without_references_yields_nothing() {
    assert!(parse_trace_refs("It crashes when I click save. Version 1.2.3, macOS 14.").is_empty());
}

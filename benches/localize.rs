//! Localiser speed on a generated 50,000-file repository.
//!
//! `cargo bench --bench localize` builds the tree once in a temporary directory (about
//! 75 MB of Python- and Rust-like source in 2,500 directories, plus a `.gitignore`d
//! `node_modules` that must be skipped), then times several `localize` calls with a
//! realistic traceback-bearing issue, printing min/median. Pass a number to change the
//! file count: `cargo bench --bench localize -- 20000`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use patchpilot::agent::localize::{LocalizeInput, localize};

const WORDS: &[&str] = &[
    "parse", "config", "load", "store", "request", "response", "session", "token", "cache",
    "render", "template", "query", "index", "buffer", "stream", "socket", "header", "value",
    "field", "schema", "event", "handler", "worker", "queue", "retry", "timeout", "client",
    "server", "route", "path", "user", "account", "invoice", "payment", "report", "metric",
];

fn main() -> anyhow::Result<()> {
    let files: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50_000);
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    generate(dir.path(), files)?;
    eprintln!(
        "generated {files} files in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let issue = format!(
        "Crash when loading invoice config\n\nTraceback (most recent call last):\n  File \"/home/u/app/pkg_{a}/mod_{b}/invoice_{c}.py\", line 42, in load_invoice_config\n    return parse_config(raw)\nKeyError: 'currency'\n\nThe `InvoiceStore` refuses configs without a currency field.",
        a = 7,
        b = 3,
        c = 11
    );
    let input = LocalizeInput {
        issue_text: &issue,
        failure_output: None,
        limit: 10,
    };
    let runs: usize = std::env::var("LOCALIZE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9);
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let found = localize(dir.path(), &input)?;
        times.push(t.elapsed());
        assert!(!found.is_empty(), "the traceback file must be found");
    }
    times.sort();
    let p90 = times[((times.len() * 9).div_ceil(10)).saturating_sub(1)];
    println!(
        "localize over {files} files, {} runs: median {:.0} ms, p90 {:.0} ms, min {:.0} ms, max {:.0} ms; load average {}",
        times.len(),
        ms(times[times.len() / 2]),
        ms(p90),
        ms(times[0]),
        ms(times[times.len() - 1]),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Deterministic pseudo-random source tree: `pkg_N/mod_M/<word>_K.{py,rs}`.
fn generate(root: &Path, files: usize) -> anyhow::Result<()> {
    std::fs::write(root.join(".gitignore"), "node_modules/\n")?;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..files {
        let (pkg, module) = (i / 500, (i / 20) % 25);
        let word = WORDS[(next() % WORDS.len() as u64) as usize];
        let ext = if i % 3 == 0 { "rs" } else { "py" };
        let dir = root.join(format!("pkg_{pkg}/mod_{module}"));
        std::fs::create_dir_all(&dir)?;
        let name = if i == 7 * 500 + 3 * 20 + 11 {
            "invoice_11.py".to_owned()
        } else {
            format!("{word}_{}.{ext}", i % 20)
        };
        std::fs::write(dir.join(name), body(&mut next, ext))?;
    }
    let nm = root.join("node_modules/dep");
    std::fs::create_dir_all(&nm)?;
    for i in 0..200 {
        std::fs::write(nm.join(format!("f{i}.js")), "function parse_config() {}\n")?;
    }
    Ok(())
}

fn body(next: &mut impl FnMut() -> u64, ext: &str) -> String {
    let mut s = String::new();
    for _ in 0..(20 + next() % 40) {
        let a = WORDS[(next() % WORDS.len() as u64) as usize];
        let b = WORDS[(next() % WORDS.len() as u64) as usize];
        if ext == "py" {
            let _ = writeln!(s, "def {a}_{b}(self, {b}):\n    return self.{a}.get('{b}')");
        } else {
            let _ = writeln!(
                s,
                "pub fn {a}_{b}({b}: &str) -> Option<String> {{ {a}({b}) }}"
            );
        }
    }
    s
}

//! Localiser speed on a generated 50,000-file repository, on one core.
//!
//! ```text
//! cargo bench --bench localize                 # 50,000 files, 5 cold + 9 warm runs
//! cargo bench --bench localize -- 20000        # another file count
//! LOCALIZE_BENCH_RUNS=15 cargo bench --bench localize
//! ```
//!
//! The bench pins itself to CPU 0 (as `taskset -c 0` would; `LOCALIZE_BENCH_PIN=no` to
//! leave it free), builds the tree once in a temporary directory (about 75 MB of Python-
//! and Rust-like source in 2,500 directories, plus a `.gitignore`d `node_modules` that
//! must be skipped), then times with a realistic traceback-bearing issue:
//!
//! - **cold**: `localize_cached` with an empty index directory (walks and reads every
//!   file, builds the index and stores it), a fresh directory each run;
//! - **warm**: `localize_cached` again on the same commit (walks names and sizes, loads
//!   the index, reads only files that may hold a quoted message or a named definition);
//! - **first (pipeline)**: `localize_deferring_index` with an empty index directory, what
//!   the pipeline's localise step waits for on a commit it has not seen: a full scan, with
//!   the index handed back to be built while the session waits on the model (that build is
//!   run after the timing, untimed, and must store the index);
//! - **scan**: `localize`, the index-free full scan the CLI uses, for comparison.
//!
//! Each prints median, p90, min and max of the wall time, the median CPU time (user +
//! system, from `getrusage`: what one idle core would take, whatever the load) and the
//! machine's load (`/proc/loadavg`) before and after: the machine may be shared, so say
//! so when quoting figures. The file
//! contents are in the page cache after generation, as a session's fresh checkout is.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use patchpilot::agent::localize::{
    IndexCache, IndexUse, LocalizeInput, localize, localize_cached, localize_deferring_index,
};

const WORDS: &[&str] = &[
    "parse", "config", "load", "store", "request", "response", "session", "token", "cache",
    "render", "template", "query", "index", "buffer", "stream", "socket", "header", "value",
    "field", "schema", "event", "handler", "worker", "queue", "retry", "timeout", "client",
    "server", "route", "path", "user", "account", "invoice", "payment", "report", "metric",
];
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn main() -> anyhow::Result<()> {
    let files: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50_000);
    let pinned = pin_to_one_core();
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    generate(dir.path(), files)?;
    eprintln!(
        "generated {files} files in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let issue = format!(
        "Crash when loading invoice config\n\nTraceback (most recent call last):\n  File \"/home/u/app/pkg_{a}/mod_{b}/invoice_{c}.py\", line 42, in load_invoice_config\n    return parse_config(raw)\nKeyError: 'currency'\n\nThe `InvoiceStore` refuses configs without a currency field: \"currency field is required\".",
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
        .unwrap_or(9)
        .max(1);
    println!(
        "localize over {files} files, {pinned}; load average before: {}",
        load()
    );

    let store = tempfile::tempdir()?;
    let mut cold = Vec::new();
    let mut expected = None;
    for run in 0..runs.div_ceil(2).max(3) {
        let cache = IndexCache::new(store.path().join(format!("cold-{run}")));
        let (found, t) = timed(|| localize_cached(dir.path(), &input, &cache, COMMIT));
        let found = found?;
        cold.push(t);
        assert_eq!(found.index, IndexUse::Built, "{:?}", found.index);
        assert!(
            found.candidates[0].path.ends_with("invoice_11.py"),
            "{:?}",
            found.candidates[0]
        );
        expected = Some(found.candidates);
    }
    report("cold (builds and stores the index)", &cold, None);

    let cache = IndexCache::new(store.path().join("cold-0"));
    let index_bytes = std::fs::metadata(cache.dir().join(format!("{COMMIT}.idx")))?.len();
    let mut warm = Vec::new();
    let mut read = 0;
    for _ in 0..runs {
        let (found, t) = timed(|| localize_cached(dir.path(), &input, &cache, COMMIT));
        let found = found?;
        warm.push(t);
        assert_eq!(found.index, IndexUse::Reused);
        assert_eq!(
            Some(&found.candidates),
            expected.as_ref(),
            "warm differs from cold"
        );
        read = found.files_read;
    }
    report(
        "warm (reuses the index)",
        &warm,
        Some(format!(
            "index {:.1} MB, {read} files read",
            index_bytes as f64 / 1e6
        )),
    );

    let mut first = Vec::new();
    for run in 0..runs.div_ceil(2).max(3) {
        let cache = IndexCache::new(store.path().join(format!("first-{run}")));
        let (found, t) = timed(|| localize_deferring_index(dir.path(), &input, &cache, COMMIT));
        let (found, pending) = found?;
        first.push(t);
        assert_eq!(found.index, IndexUse::Deferred);
        assert_eq!(Some(&found.candidates), expected.as_ref(), "first differs");
        let pending = pending.ok_or_else(|| {
            anyhow::anyhow!("a first localisation must hand back the index to build")
        })?;
        assert_eq!(pending.build(), IndexUse::Built);
    }
    report(
        "first (pipeline: scan now, index built while waiting on the model)",
        &first,
        None,
    );

    let mut scan = Vec::new();
    for _ in 0..runs.div_ceil(2).max(3) {
        let (found, t) = timed(|| localize(dir.path(), &input));
        let found = found?;
        scan.push(t);
        assert_eq!(
            Some(&found),
            expected.as_ref(),
            "full scan differs from the index"
        );
    }
    report("scan (no index, `patchpilot localize`)", &scan, None);
    println!("load average after: {}", load());
    Ok(())
}

/// Wall and CPU time of one run.
struct Timed {
    wall: Duration,
    cpu: Duration,
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Timed) {
    let (wall, cpu) = (Instant::now(), cpu_time());
    let out = f();
    let t = Timed {
        wall: wall.elapsed(),
        cpu: cpu_time().saturating_sub(cpu),
    };
    (out, t)
}

/// User + system time of the whole process (all its threads).
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |u| {
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
        };
        tv(u.user_time()) + tv(u.system_time())
    })
}

fn report(what: &str, runs: &[Timed], extra: Option<String>) {
    let mut times: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    let mut cpu: Vec<Duration> = runs.iter().map(|r| r.cpu).collect();
    times.sort();
    cpu.sort();
    let p90 = times[((times.len() * 9).div_ceil(10)).saturating_sub(1)];
    println!(
        "  {what}: {} runs, wall median {:.0} ms, p90 {:.0} ms, min {:.0} ms, max {:.0} ms; CPU median {:.0} ms, p90 {:.0} ms{}",
        times.len(),
        ms(times[times.len() / 2]),
        ms(p90),
        ms(times[0]),
        ms(times[times.len() - 1]),
        ms(cpu[cpu.len() / 2]),
        ms(cpu[((cpu.len() * 9).div_ceil(10)).saturating_sub(1)]),
        extra.map(|e| format!("; {e}")).unwrap_or_default()
    );
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Pins the process (and the threads it starts) to CPU 0 unless told not to.
fn pin_to_one_core() -> String {
    if std::env::var("LOCALIZE_BENCH_PIN").is_ok_and(|v| v == "no") {
        return format!(
            "not pinned ({} CPUs)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
    let mut set = nix::sched::CpuSet::new();
    let pinned = set
        .set(0)
        .and_then(|()| nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set));
    match pinned {
        Ok(()) => "pinned to CPU 0 (one core, as `taskset -c 0`)".to_owned(),
        Err(e) => format!("could not pin to one core ({e})"),
    }
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

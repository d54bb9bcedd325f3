//! Maps paths as written in traces (absolute, Windows, `file://`, package-relative) and
//! dotted module names onto the repository's files, with no I/O.
//!
//! Matching is by trailing path components. A reference resolves to a file when either
//! the whole file path is a suffix of the reference (`/home/u/proj/src/a.py` →
//! `src/a.py`) or the whole reference is a suffix of the file path (`com/acme/App.java`
//! → `src/main/java/com/acme/App.java`). Frames inside installed-package or toolchain
//! directories (`site-packages`, `node_modules`, `.cargo/registry`, `/rustc/`, GOROOT)
//! count only when everything after that directory matches a repository file — that is
//! the repository's own package installed into an environment, the usual case when a
//! user pastes a traceback from their project; other such frames are dependencies and
//! are dropped. Ambiguous bare file names resolve to at most [`MAX_AMBIGUOUS`] files,
//! each with a proportionally lower confidence.

use std::collections::HashMap;

/// More candidates than this for a bare name means the name says nothing.
pub const MAX_AMBIGUOUS: usize = 3;

const FOREIGN_MARKERS: &[&str] = &[
    "site-packages",
    "dist-packages",
    "node_modules",
    "registry",
    "rustc",
    "pkg/mod",
    "goroot",
    "jdk",
    "lib/python",
];

/// An index over the repository's paths.
pub struct PathIndex<'a> {
    paths: &'a [String],
    by_name: HashMap<&'a str, Vec<usize>>,
    by_stem_tail: HashMap<String, Vec<usize>>,
}

impl<'a> PathIndex<'a> {
    pub fn new(paths: &'a [String]) -> Self {
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_stem_tail: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in paths.iter().enumerate() {
            let name = p.rsplit('/').next().unwrap_or(p);
            by_name.entry(name).or_default().push(i);
            by_stem_tail
                .entry(stem_tail(&module_stem(p)))
                .or_default()
                .push(i);
        }
        Self {
            paths,
            by_name,
            by_stem_tail,
        }
    }

    /// Resolves a trace path to `(file index, confidence in 0..=1)` pairs.
    pub fn resolve(&self, written: &str) -> Vec<(usize, f64)> {
        let Some(parts) = normalise(written) else {
            return Vec::new();
        };
        let (foreign_tail, min_len) = match foreign_split(&parts) {
            Some(after) => (true, after),
            None => (false, 0),
        };
        let name = parts[parts.len() - 1];
        let Some(cands) = self.by_name.get(name) else {
            return Vec::new();
        };
        let matches: Vec<usize> = cands
            .iter()
            .copied()
            .filter(|&i| {
                let file: Vec<&str> = self.paths[i].split('/').collect();
                let k = common_tail(&parts, &file);
                if foreign_tail {
                    k >= min_len
                } else {
                    k == file.len() || k == parts.len()
                }
            })
            .collect();
        spread(matches)
    }

    /// Resolves a dotted or `::` module path (`requests.models.Response`,
    /// `crate::config::load`) to files whose path ends with a prefix of it.
    pub fn resolve_module(&self, dotted: &str) -> Vec<(usize, f64)> {
        let parts: Vec<&str> = dotted
            .split(['.', ':'])
            .filter(|p| !p.is_empty() && *p != "crate" && *p != "self" && *p != "super")
            .collect();
        for take in (2..=parts.len()).rev() {
            let prefix = parts[..take].join("/");
            let Some(cands) = self.by_stem_tail.get(&stem_tail(&prefix)) else {
                continue;
            };
            let hits: Vec<usize> = cands
                .iter()
                .copied()
                .filter(|&i| {
                    let stem = module_stem(&self.paths[i]);
                    stem == prefix || stem.ends_with(&format!("/{prefix}"))
                })
                .collect();
            if !hits.is_empty() {
                return spread(hits);
            }
        }
        Vec::new()
    }
}

fn spread(matches: Vec<usize>) -> Vec<(usize, f64)> {
    if matches.is_empty() || matches.len() > MAX_AMBIGUOUS {
        return Vec::new();
    }
    let c = 1.0 / matches.len() as f64;
    matches.into_iter().map(|i| (i, c)).collect()
}

/// `a/b/__init__.py` → `a/b`; `src/lib/mod.rs` → `src/lib`; `a/b.py` → `a/b`.
fn module_stem(path: &str) -> String {
    let no_ext = path
        .rsplit_once('.')
        .filter(|(s, _)| !s.ends_with('/'))
        .map_or(path, |(s, _)| s);
    for index in ["/__init__", "/mod", "/index"] {
        if let Some(dir) = no_ext.strip_suffix(index) {
            return dir.to_owned();
        }
    }
    no_ext.to_owned()
}

/// The last two components, the key both sides of a module lookup share.
fn stem_tail(stem: &str) -> String {
    let parts: Vec<&str> = stem.rsplit('/').take(2).collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

/// Splits a written path into components; `None` for pseudo-paths like `<string>`.
fn normalise(written: &str) -> Option<Vec<&str>> {
    let p = written.trim().trim_start_matches("file://");
    if p.starts_with('<') || p.starts_with("node:") || p.starts_with("internal/") {
        return None;
    }
    let p = if p.len() > 2 && p.as_bytes()[1] == b':' {
        &p[2..]
    } else {
        p
    };
    let parts: Vec<&str> = p
        .split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.is_empty() { None } else { Some(parts) }
}

/// For a path inside a dependency or toolchain directory, the number of components after
/// the last marker; `None` for ordinary paths.
fn foreign_split(parts: &[&str]) -> Option<usize> {
    let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
    let mut after = None;
    for (i, c) in lower.iter().enumerate() {
        let pair = lower.get(i + 1).map(|n| format!("{c}/{n}"));
        if FOREIGN_MARKERS.contains(&c.as_str())
            || pair
                .as_deref()
                .is_some_and(|p| FOREIGN_MARKERS.contains(&p))
        {
            let skip = if pair
                .as_deref()
                .is_some_and(|p| FOREIGN_MARKERS.contains(&p))
            {
                2
            } else {
                1
            };
            after = Some(parts.len().saturating_sub(i + skip));
        }
    }
    after.map(|a| a.max(1))
}

fn common_tail(a: &[&str], b: &[&str]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn resolved(ix: &PathIndex<'_>, p: &str) -> Vec<String> {
        ix.resolve(p)
            .into_iter()
            .map(|(i, _)| ix.paths[i].clone())
            .collect()
    }

    #[test]
    fn absolute_and_relative_paths_map_by_suffix() {
        let files = paths(&["src/app/config.py", "lib/src/app/config.py", "src/main.rs"]);
        let ix = PathIndex::new(&files);
        assert_eq!(
            resolved(&ix, "/home/u/proj/src/app/config.py"),
            ["src/app/config.py"]
        );
        assert_eq!(resolved(&ix, "./src/main.rs"), ["src/main.rs"]);
        assert_eq!(resolved(&ix, r"C:\work\proj\src\main.rs"), ["src/main.rs"]);
        assert_eq!(resolved(&ix, "file:///srv/x/src/main.rs"), ["src/main.rs"]);
    }

    #[test]
    fn package_suffix_maps_into_deeper_tree() {
        let files = paths(&["core/src/main/java/com/acme/App.java", "other/App.java"]);
        let ix = PathIndex::new(&files);
        assert_eq!(
            resolved(&ix, "com/acme/App.java"),
            ["core/src/main/java/com/acme/App.java"]
        );
    }

    #[test]
    fn dependency_frames_are_dropped_but_own_installed_package_is_kept() {
        let files = paths(&[
            "src/requests/models.py",
            "src/requests/__init__.py",
            "utils/__init__.py",
        ]);
        let ix = PathIndex::new(&files);
        assert_eq!(
            resolved(&ix, "/venv/lib/python3.12/site-packages/requests/models.py"),
            ["src/requests/models.py"]
        );
        assert!(
            resolved(
                &ix,
                "/venv/lib/python3.12/site-packages/urllib3/__init__.py"
            )
            .is_empty()
        );
        assert!(resolved(&ix, "/app/node_modules/lodash/index.js").is_empty());
        assert!(resolved(&ix, "/rustc/abc123/library/std/src/panicking.rs").is_empty());
    }

    #[test]
    fn pseudo_paths_resolve_to_nothing() {
        let files = paths(&["string"]);
        let ix = PathIndex::new(&files);
        assert!(ix.resolve("<string>").is_empty());
        assert!(ix.resolve("node:internal/modules/cjs/loader").is_empty());
    }

    #[test]
    fn ambiguous_bare_names_share_confidence_and_too_many_give_nothing() {
        let files = paths(&[
            "a/utils.rs",
            "b/utils.rs",
            "x/mod.rs",
            "y/mod.rs",
            "z/mod.rs",
            "w/mod.rs",
        ]);
        let ix = PathIndex::new(&files);
        let r = ix.resolve("utils.rs");
        assert_eq!(r.len(), 2);
        assert!((r[0].1 - 0.5).abs() < 1e-9);
        assert!(ix.resolve("mod.rs").is_empty());
    }

    #[test]
    fn partial_overlap_is_not_a_match() {
        let files = paths(&["pkg/utils.py"]);
        let ix = PathIndex::new(&files);
        assert!(ix.resolve("/home/u/other/utils.py").is_empty());
    }

    #[test]
    fn dotted_modules_map_to_files_and_packages() {
        let files = paths(&[
            "src/requests/models.py",
            "click/core.py",
            "flask/json/__init__.py",
            "src/config/mod.rs",
        ]);
        let ix = PathIndex::new(&files);
        let one = |d: &str| {
            ix.resolve_module(d)
                .into_iter()
                .map(|(i, _)| files[i].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            one("requests.models.Response.json"),
            ["src/requests/models.py"]
        );
        assert_eq!(one("click.core.Option"), ["click/core.py"]);
        assert_eq!(one("flask.json.dumps"), ["flask/json/__init__.py"]);
        assert_eq!(one("crate::config::load"), Vec::<String>::new());
        assert_eq!(one("src::config::load"), ["src/config/mod.rs"]);
        assert!(one("os.path.join").is_empty());
    }
}

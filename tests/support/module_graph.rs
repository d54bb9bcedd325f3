// The crate's import graph, read from the text of `src/`: every `crate::`, `super::` and
// `self::` path outside comments, strings and `#[cfg(test)]` items, resolved to the longest
// module it names. Included by `tests/architecture.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Where a top-level module sits. Imports may only point to the same layer or a lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    Unknown,
    /// Plain helpers every layer may use; they import nothing of the crate.
    Foundation,
    Boundary,
    Core,
    Edge,
}

impl Layer {
    pub fn of(top_level: &str) -> Layer {
        match top_level {
            "main" | "server" | "app" | "config" | "local_run" => Layer::Edge,
            "webhook" | "session" | "report" | "agent" | "worker" | "authorization" => {
                Layer::Core
            }
            "github" | "store" | "llm" | "sandbox" => Layer::Boundary,
            "shutdown" => Layer::Foundation,
            _ => Layer::Unknown,
        }
    }
}

/// Module path (`agent::steps::clone`) → the folder its file lives in (`agent/steps`) and the
/// modules it imports.
pub struct Graph {
    modules: BTreeMap<String, Module>,
}

struct Module {
    folder: String,
    imports: BTreeSet<String>,
}

impl Graph {
    pub fn read(src: &Path) -> Graph {
        let mut files = Vec::new();
        collect_rs(src, src, &mut files);
        let known: BTreeSet<String> = files.iter().map(|(m, _, _)| m.clone()).collect();
        let mut modules = BTreeMap::new();
        for (module, folder, text) in files {
            let code = strip_tests(&strip_comments_and_strings(&text));
            let imports = paths_in(&code)
                .into_iter()
                .filter_map(|path| resolve(&module, &path, &known))
                .filter(|target| target != &module)
                .collect();
            modules.insert(module, Module { folder, imports });
        }
        Graph { modules }
    }

    pub fn top_level_modules(&self) -> BTreeSet<String> {
        self.modules.keys().map(|m| top_level(m)).filter(|m| !m.is_empty()).collect()
    }

    pub fn top_level_edges(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.edges(|module, _| top_level(module))
    }

    pub fn module_edges(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.edges(|module, _| module.to_string())
    }

    /// Files as nodes, without the front doors (`mod.rs`, `lib.rs`): what one file of a folder
    /// takes from another. A `mod.rs` and its children naturally import each other (it
    /// declares and re-exports them, they share its types), so only these edges are checked.
    pub fn sibling_edges(&self) -> BTreeMap<String, BTreeSet<String>> {
        let front_door = |name: &str| {
            self.modules
                .get(name)
                .is_none_or(|m| m.folder.replace('/', "::") == name || name.is_empty())
        };
        let mut edges = self.module_edges();
        edges.retain(|from, _| !front_door(from));
        for targets in edges.values_mut() {
            targets.retain(|to| !front_door(to));
        }
        edges
    }

    /// Folders as nodes. A folder's `mod.rs` is its front door: it declares and wires its
    /// sub-folders, so its imports of them are not edges. Every other file's are, so a parent
    /// file that builds a child's type while the child imports the parent is a cycle.
    pub fn folder_edges(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut edges = self.edges(|_, folder| folder.to_string());
        for (folder, targets) in edges.iter_mut() {
            let prefix = format!("{folder}/");
            let reached_by_other_files = |child: &String| {
                self.modules.iter().any(|(name, m)| {
                    m.folder == *folder
                        && m.folder.replace('/', "::") != *name
                        && m.imports.iter().any(|t| self.modules[t].folder == *child)
                })
            };
            targets.retain(|to| !to.starts_with(&prefix) || reached_by_other_files(to));
        }
        edges
    }

    fn edges(&self, node: impl Fn(&str, &str) -> String) -> BTreeMap<String, BTreeSet<String>> {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, module) in &self.modules {
            let from = node(name, &module.folder);
            if from.is_empty() {
                continue;
            }
            let entry = edges.entry(from.clone()).or_default();
            for target in &module.imports {
                let to = node(target, &self.modules[target].folder);
                if !to.is_empty() && to != from {
                    entry.insert(to);
                }
            }
        }
        edges
    }
}

fn top_level(module: &str) -> String {
    module.split("::").next().unwrap_or_default().to_string()
}

/// (module path, folder, text) for every `.rs` file; `lib.rs` is the root "" and `main.rs` is
/// the binary, named `main`.
fn collect_rs(root: &Path, dir: &Path, out: &mut Vec<(String, String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(root, &path, out);
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        let folder = rel.rsplit_once('/').map(|(f, _)| f.to_string()).unwrap_or_default();
        let stem = rel.trim_end_matches(".rs");
        let module = match stem {
            "lib" => String::new(),
            "main" => "main".to_string(),
            _ => stem.trim_end_matches("/mod").replace('/', "::"),
        };
        let folder = if stem.ends_with("/mod") || folder.is_empty() {
            folder_of_mod(stem, &folder)
        } else {
            folder
        };
        out.push((module, folder, std::fs::read_to_string(&path).unwrap()));
    }
}

/// A `mod.rs` lives in its own folder; a root file (`config.rs`) is a folder of its own, so
/// that the root's loose files are nodes like any folder.
fn folder_of_mod(stem: &str, folder: &str) -> String {
    if stem.ends_with("/mod") {
        folder.to_string()
    } else if stem == "lib" {
        String::new()
    } else {
        stem.to_string()
    }
}

/// The text with comments, string and char literals blanked out (newlines kept).
fn strip_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && !ident_before(&chars, i)
        {
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a without a close).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// Removes every item that follows `#[cfg(test)]`: up to its matching close brace, or to `;`.
fn strip_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at + "#[cfg(test)]".len()..];
        let mut depth = 0usize;
        let mut end = item.len();
        for (i, c) in item.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Every path the code names that starts at `crate`, `super` or `self`, with `use` trees
/// (`use crate::{a::{self, b}, c}`) expanded.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    // `use` trees first; what is left is read for inline paths.
    let mut inline = String::new();
    while let Some(at) = find_keyword(rest, "use") {
        inline.push_str(&rest[..at]);
        let tree = &rest[at + 3..];
        let end = tree.find(';').unwrap_or(tree.len());
        expand_use_tree(&tree[..end], Vec::new(), &mut paths);
        rest = &tree[(end + 1).min(tree.len())..];
    }
    inline.push_str(rest);
    // Inline paths: every `a::b::c` whose first segment is not itself after a `::`.
    let bytes = inline.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut at = 0;
    while let Some(found) = inline[at..].find("::") {
        let sep = at + found;
        at = sep + 2;
        let mut start = sep;
        while start > 0 && is_ident(bytes[start - 1]) {
            start -= 1;
        }
        let before = inline[..start].trim_end();
        if start == sep || before.ends_with("::") || before.ends_with('$') && !inline[start..].starts_with("crate") {
            continue;
        }
        let path: Vec<String> = inline[start..]
            .split("::")
            .map(|seg| seg.trim_start())
            .map_while(|seg| {
                let ident: String =
                    seg.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                (!ident.is_empty()).then_some(ident)
            })
            .collect();
        paths.push(path);
    }
    paths.retain(|p| !p.is_empty());
    paths
}

fn find_keyword(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        let before_ok = at == 0 || {
            let b = text[..at].chars().next_back().unwrap();
            !(b.is_alphanumeric() || b == '_')
        };
        let after = text[at + word.len()..].chars().next();
        let after_ok = after.is_some_and(char::is_whitespace);
        if before_ok && after_ok {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn expand_use_tree(tree: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let mut head = prefix;
        head.extend(segments(&tree[..open]));
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        for part in split_top_level(inner) {
            expand_use_tree(part, head.clone(), out);
        }
    } else {
        let mut path = prefix;
        let leaf = tree.split(" as ").next().unwrap_or_default();
        path.extend(segments(leaf));
        if path.last().map(String::as_str) == Some("self") && path.len() > 1 {
            path.pop();
        }
        if !path.is_empty() {
            out.push(path);
        }
    }
}

fn segments(text: &str) -> Vec<String> {
    text.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "*")
        .map(str::to_string)
        .collect()
}

fn split_top_level(inner: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
}

/// The longest known module that `path`, read from inside `module`, names.
fn resolve(module: &str, path: &[String], known: &BTreeSet<String>) -> Option<String> {
    let mut base: Vec<String> = if module.is_empty() || module == "main" {
        Vec::new()
    } else {
        module.split("::").map(str::to_string).collect()
    };
    let mut rest = path;
    match rest.first().map(String::as_str) {
        // `main.rs` names the library by its crate name.
        Some("crate" | "patchpilot") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        // A path from a child module (`pages::router`) or anything else: only a child counts.
        Some(first) => {
            let mut child = base.clone();
            child.push(first.to_string());
            if !known.contains(&child.join("::")) {
                return None;
            }
        }
        None => return None,
    }
    let mut best = None;
    let mut candidate = base;
    let base_name = candidate.join("::");
    if known.contains(&base_name) {
        best = Some(base_name);
    }
    for seg in rest {
        candidate.push(seg.clone());
        let name = candidate.join("::");
        if known.contains(&name) {
            best = Some(name);
        }
    }
    best.filter(|m| !m.is_empty())
}

/// Every elementary cycle's nodes, found as strongly connected components of two or more.
pub fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's algorithm, iterative enough for a graph of a few dozen nodes.
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, node: &'a str) {
        s.index.insert(node, s.next);
        s.low.insert(node, s.next);
        s.next += 1;
        s.stack.push(node);
        s.on_stack.insert(node);
        if let Some(targets) = s.edges.get(node) {
            for to in targets {
                let to = to.as_str();
                if !s.index.contains_key(to) {
                    visit(s, to);
                    let low = s.low[node].min(s.low[to]);
                    s.low.insert(node, low);
                } else if s.on_stack.contains(to) {
                    let low = s.low[node].min(s.index[to]);
                    s.low.insert(node, low);
                }
            }
        }
        if s.low[node] == s.index[node] {
            let mut component = Vec::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(top);
                component.push(top.to_string());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found
}

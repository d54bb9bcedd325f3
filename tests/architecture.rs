//! The layers `src/lib.rs` promises, checked against the code's own `use` paths.
//!
//! Imports run one way: edge (`main`, `server`, `app`, `config`, `local_run`) → core
//! (`webhook`, `authorization`, `session`, `report`, `agent`, `worker`) → boundaries (`github`,
//! `store`, `llm`, `sandbox`), with `shutdown` usable by all. No cycle between top-level
//! modules or between folders. Test modules are left out: they may reach anywhere.
//!
//! `cargo test --test architecture -- --nocapture` prints both graphs.
//!
//! Written by hand (std only) because the rule is about this crate's layout, and a small
//! reader of `crate::`/`super::`/`self::` paths is enough; `cargo-modules` and friends answer
//! a different question (the module tree) and would need an extra tool in CI.

mod support_graph {
    include!("support/module_graph.rs");
}

use std::collections::{BTreeMap, BTreeSet};
use support_graph::{Graph, Layer};

fn graph() -> Graph {
    Graph::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src")
            .as_path(),
    )
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = graph();
    let edges = graph.top_level_edges();
    let files = graph.module_edges();
    println!(
        "files: {} modules, {} edges",
        files.len(),
        edges_count(&files)
    );
    println!(
        "top-level modules: {} modules, {} edges",
        edges.len(),
        edges_count(&edges)
    );
    print_edges(&edges);
    let cycles = support_graph::cycles(&edges);
    assert!(cycles.is_empty(), "top-level module cycles: {cycles:#?}");
}

#[test]
fn folders_form_no_cycle() {
    let graph = graph();
    let edges = graph.folder_edges();
    println!(
        "folders: {} folders, {} edges",
        edges.len(),
        edges_count(&edges)
    );
    print_edges(&edges);
    let cycles = support_graph::cycles(&edges);
    assert!(cycles.is_empty(), "folder cycles: {cycles:#?}");
}

#[test]
fn files_form_no_cycle_outside_their_front_doors() {
    let edges = graph().sibling_edges();
    let cycles = support_graph::cycles(&edges);
    assert!(
        cycles.is_empty(),
        "file cycles (mod.rs left out): {cycles:#?}"
    );
}

#[test]
fn imports_run_from_edge_to_core_to_boundaries() {
    let graph = graph();
    let mut wrong = Vec::new();
    for (from, targets) in graph.top_level_edges() {
        for to in targets {
            let (a, b) = (Layer::of(&from), Layer::of(&to));
            if a < b {
                wrong.push(format!("{from} ({a:?}) imports {to} ({b:?})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that run upwards:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let graph = graph();
    let unknown: Vec<String> = graph
        .top_level_modules()
        .into_iter()
        .filter(|m| Layer::of(m) == Layer::Unknown)
        .collect();
    assert!(
        unknown.is_empty(),
        "give these modules a layer in tests/support/module_graph.rs: {unknown:?}"
    );
}

/// The reader itself: a cycle planted in text must be found, and test modules must not count.
#[test]
fn the_reader_sees_a_planted_cycle_and_skips_test_modules() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("store")).unwrap();
    std::fs::create_dir_all(src.join("agent/steps")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod store;\npub mod agent;\n").unwrap();
    std::fs::write(
        src.join("store/mod.rs"),
        "// use crate::agent::x; in a comment\nconst S: &str = \"crate::agent::y\";\n\
         pub fn f() { let _ = crate::agent::steps::g(); }\n\
         #[cfg(test)]\nmod tests { use crate::agent::Whatever; }\n",
    )
    .unwrap();
    std::fs::write(src.join("agent/mod.rs"), "pub mod steps;\n").unwrap();
    std::fs::write(
        src.join("agent/steps/mod.rs"),
        "use crate::{store::{self, f}, agent::Other};\npub fn g() {}\n",
    )
    .unwrap();
    let graph = Graph::read(src);
    let top = graph.top_level_edges();
    assert_eq!(top["store"], BTreeSet::from(["agent".to_string()]));
    assert_eq!(top["agent"], BTreeSet::from(["store".to_string()]));
    assert_eq!(support_graph::cycles(&top).len(), 1);

    std::fs::write(
        src.join("store/mod.rs"),
        "#[cfg(test)]\nmod tests { use crate::agent::X; }\n",
    )
    .unwrap();
    let graph = Graph::read(src);
    assert!(support_graph::cycles(&graph.top_level_edges()).is_empty());
}

fn edges_count(edges: &BTreeMap<String, BTreeSet<String>>) -> usize {
    edges.values().map(BTreeSet::len).sum()
}

fn print_edges(edges: &BTreeMap<String, BTreeSet<String>>) {
    for (from, to) in edges {
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        println!("  {from} -> {}", to.join(", "));
    }
}

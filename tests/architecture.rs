//! The shape docs/ARCHITECTURE.md describes, checked on every test run: no import cycle between
//! the top-level modules of `src/`, and every table's SQL in exactly one file (its owner).
//! It reads the sources as text, as a reviewer would: a `crate::x` path anywhere in a module
//! (code, tests or docs) is a dependency on `x`, and `FROM|INTO|UPDATE|JOIN|DELETE FROM <table>`
//! is SQL on that table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file belongs to (`None` for lib.rs and main.rs).
fn top_module(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib" && name != "main").then_some(name)
}

/// Identifier characters following `prefix` at each of its occurrences in `text`.
fn words_after<'a>(text: &'a str, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.match_indices(prefix).filter_map(move |(i, _)| {
        let rest = &text[i + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    })
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = top_module(file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        for dep in words_after(&text, "crate::") {
            if dep != module {
                deps.insert(dep.to_owned());
            }
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in &graph[at] {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = module_graph();
    assert!(graph.len() > 10, "the module scan found {graph:?}");
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|path| path.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

fn tables() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for backend in std::fs::read_dir(dir).unwrap() {
        for file in std::fs::read_dir(backend.unwrap().path()).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            let text = text.replace("IF NOT EXISTS ", "");
            out.extend(words_after(&text, "CREATE TABLE ").map(str::to_owned));
        }
    }
    out
}

#[test]
fn every_table_has_one_owner() {
    let tables = tables();
    assert!(tables.contains("users") && tables.contains("refresh_tokens"));
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut owners: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let rel = file.strip_prefix(src()).unwrap().display().to_string();
        for keyword in ["FROM ", "INTO ", "UPDATE ", "JOIN "] {
            for word in words_after(&text, keyword) {
                if tables.contains(word) {
                    owners
                        .entry(word.to_owned())
                        .or_default()
                        .insert(rel.clone());
                }
            }
        }
    }
    let shared: Vec<String> = owners
        .iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|(table, files)| format!("{table}: {files:?}"))
        .collect();
    assert!(
        shared.is_empty(),
        "tables whose SQL lives in several files:\n{}",
        shared.join("\n")
    );
}

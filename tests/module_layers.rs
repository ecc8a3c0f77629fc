//! The crate's top-level modules form layers (DESIGN.md, "Layers"): a
//! module names only modules of lower layers, so there is no cycle among
//! them. This test reads `src/` and checks both.
//!
//! A module is a top-level file `src/NAME.rs` or folder `src/NAME/`
//! (`src/bin` and `src/lib.rs` are not modules). An edge `a -> b` is a
//! reference to `crate::b` (or to an item the crate root re-exports from
//! `b`, or `super::b` reaching the root) in `a`'s code outside its tests and
//! comments.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may name only modules of the layers
/// before its own; modules of one layer do not name each other.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["money"],
    &["period"],
    &["text", "store"],
    &["expr"],
    &["metric"],
    &["charge", "limit"],
    &["contract"],
    &["settle"],
    &["document"],
    &["report"],
    &["reconcile", "run"],
    &["simulate", "ledger"],
];

/// A reference from one module to another, where it is written.
type Edges = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules.
fn modules() -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    for entry in fs::read_dir(src()).expect("src/ is readable") {
        let path = entry.expect("an entry of src/").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "bin" {
                modules.insert(name);
            }
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if stem != "lib" {
                modules.insert(stem.to_string());
            }
        }
    }
    modules
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The items the crate root re-exports (`pub use settle::{Line, ...};`),
/// by the module they come from.
fn root_exports(modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("src/lib.rs");
    let mut exports = BTreeMap::new();
    for statement in lib.split(';') {
        let statement = statement.trim();
        let Some(rest) = statement
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("//") && !l.starts_with("#"))
            .collect::<Vec<_>>()
            .join(" ")
            .strip_prefix("pub use ")
            .map(str::to_string)
        else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        if !modules.contains(module) {
            continue;
        }
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim();
            let name = item.rsplit("::").next().unwrap_or(item);
            let name = name.rsplit(" as ").next().unwrap_or(name).trim();
            if !name.is_empty() {
                exports.insert(name.to_string(), module.to_string());
            }
        }
    }
    exports
}

/// The code of a file without its tests (from `#[cfg(test)] mod tests` on)
/// and without comment lines.
fn code(text: &str) -> Vec<(usize, &str)> {
    let end = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..end]
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .collect()
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The names a line reaches at the crate root: `crate::x`, each first name
/// of `crate::{x, y::z}`, and `super::x` where the `super`s climb to the
/// root from a module `depth` deep.
fn root_names(line: &str, depth: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        // Not the tail of another path (`$crate::`, `my_crate::`).
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut level = 0;
            let mut start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => level += 1,
                    '}' if level == 0 => break,
                    '}' => level -= 1,
                    ',' if level == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        names.push(ident(&group[k..]).to_string());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            names.push(ident(rest).to_string());
        }
    }
    let mut rest = line;
    while let Some(i) = rest.find("super::") {
        let before = rest[..i].chars().last();
        let mut supers = 0;
        rest = &rest[i..];
        while let Some(tail) = rest.strip_prefix("super::") {
            supers += 1;
            rest = tail;
        }
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if supers == depth {
            names.push(ident(rest).to_string());
        }
    }
    names
}

/// The module graph of `src/`.
fn graph() -> (BTreeSet<String>, Edges) {
    let modules = modules();
    let exports = root_exports(&modules);
    let root = src();
    let mut paths = Vec::new();
    files(&root, &mut paths);
    let mut edges = Edges::new();
    for path in paths {
        let rel = path.strip_prefix(&root).unwrap();
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let top = parts[0].trim_end_matches(".rs").to_string();
        if !modules.contains(&top) {
            continue; // src/lib.rs, src/bin
        }
        // How deep the file's module is: `src/a.rs` and `src/a/mod.rs` are
        // one deep, `src/a/b.rs` two.
        let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod.rs"));
        let text = fs::read_to_string(&path).expect("readable source");
        for (n, line) in code(&text) {
            for name in root_names(line, depth) {
                let target = if modules.contains(&name) {
                    name
                } else if let Some(module) = exports.get(&name) {
                    module.clone()
                } else {
                    continue;
                };
                if target != top {
                    edges
                        .entry(top.clone())
                        .or_default()
                        .entry(target)
                        .or_default()
                        .push(format!("src/{}:{n}", rel.display()));
                }
            }
        }
    }
    (modules, edges)
}

/// A cycle of the graph, as `a -> b -> ... -> a`, if there is one.
fn cycle(modules: &BTreeSet<String>, edges: &Edges) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn walk(
        m: &str,
        edges: &Edges,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(m.to_string(), Mark::Open);
        path.push(m.to_string());
        for next in edges.get(m).into_iter().flat_map(|e| e.keys()) {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let from = path.iter().position(|p| p == next).unwrap();
                    let mut found = path[from..].to_vec();
                    found.push(next.clone());
                    return Some(found);
                }
                Mark::New => {
                    if let Some(found) = walk(next, edges, marks, path) {
                        return Some(found);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(m.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for m in modules {
        if marks.get(m).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(found) = walk(m, edges, &mut marks, &mut Vec::new()) {
                return Some(found);
            }
        }
    }
    None
}

/// The graph, one line per module.
fn describe(edges: &Edges) -> String {
    edges
        .iter()
        .map(|(a, bs)| {
            format!(
                "  {a} -> {}",
                bs.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_graph_is_read() {
    // The reader finds what is surely there: settlement names contracts,
    // the contract names its charges, and every module names `error` or
    // is named by another.
    let (modules, edges) = graph();
    assert!(modules.len() >= 10, "{modules:?}");
    let names = |a: &str, b: &str| edges.get(a).is_some_and(|e| e.contains_key(b));
    assert!(names("settle", "contract"), "\n{}", describe(&edges));
    assert!(names("contract", "charge"), "\n{}", describe(&edges));
    assert!(names("settle", "charge"), "\n{}", describe(&edges));
}

#[test]
fn the_reader_sees_every_form_of_reference() {
    // `crate::x`, grouped `crate::{x, y::z}`, and `super::` reaching the root.
    assert_eq!(root_names("use crate::expr::Expr;", 1), ["expr"]);
    assert_eq!(
        root_names("use crate::{money::Rounding, period};", 2),
        ["money", "period"]
    );
    assert_eq!(root_names("use super::super::settle::R;", 2), ["settle"]);
    assert!(root_names("use super::kind::Kind;", 2).is_empty());
    assert!(root_names("$crate::x", 1).is_empty());
}

#[test]
fn no_module_cycles() {
    let (modules, edges) = graph();
    if let Some(found) = cycle(&modules, &edges) {
        let mut why = Vec::new();
        for pair in found.windows(2) {
            let at = &edges[&pair[0]][&pair[1]];
            why.push(format!("  {} -> {}: {}", pair[0], pair[1], at.join(", ")));
        }
        panic!(
            "module cycle {}\n{}\ngraph:\n{}",
            found.join(" -> "),
            why.join("\n"),
            describe(&edges)
        );
    }
}

#[test]
fn modules_name_only_lower_layers() {
    let (modules, edges) = graph();
    let layer_of: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| layer.iter().map(move |m| (*m, i)))
        .collect();
    let unplaced: Vec<&String> = modules
        .iter()
        .filter(|m| !layer_of.contains_key(m.as_str()))
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to LAYERS here and in DESIGN.md): {unplaced:?}"
    );
    let mut wrong = Vec::new();
    for (a, targets) in &edges {
        for (b, at) in targets {
            if layer_of[a.as_str()] <= layer_of[b.as_str()] {
                wrong.push(format!("  {a} -> {b}: {}", at.join(", ")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "modules naming a module of their own or a higher layer:\n{}\ngraph:\n{}",
        wrong.join("\n"),
        describe(&edges)
    );
}

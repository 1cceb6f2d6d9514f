//! The layout keeps: read from the code's own `crate::`/`super::` paths,
//! every top-level module imports only modules of a lower layer (the table
//! below, which `src/lib.rs`'s tour follows), and inside each folder no
//! files import each other in a circle. A new top-level module must be
//! given a layer here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::helpers::MANIFEST_DIR;

/// Each top-level module's layer: a module may import only modules of a
/// lower one.
const LAYERS: &[(&str, u32)] = &[
    ("app", 12),
    ("http", 11),
    ("telemetry", 11),
    ("config", 10),
    ("cobalt", 10),
    ("service", 9),
    ("manifest", 8),
    ("subtitles", 8),
    ("select", 7),
    ("cache", 7),
    ("live", 7),
    ("output", 7),
    ("extract", 6),
    ("relay", 6),
    ("ratelimit", 6),
    ("upstream", 5),
    ("egress", 4),
    ("platform", 3),
    ("hls", 2),
    ("metrics", 1),
    ("net", 1),
    ("process", 1),
    ("redis", 1),
    ("traffic", 0),
    ("request_id", 0),
];

/// Importer -> what it imports.
type Edges = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `relay/store.rs` is
/// `["relay", "store"]`, `relay/mod.rs` is `["relay"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its unit tests.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The module names that follow each occurrence of `prefix` (`crate::`).
fn after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    code.match_indices(prefix)
        .filter(|(i, _)| !code[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|(i, _)| {
            let rest = &code[i + prefix.len()..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// Imports as (importer, imported): top-level modules, and inside each
/// folder its files.
fn graph() -> (Edges, BTreeMap<String, Edges>) {
    let src = Path::new(MANIFEST_DIR).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut top = Edges::new();
    let mut inner: BTreeMap<String, Edges> = BTreeMap::new();
    for file in files {
        let module = module_of(&src, &file);
        let Some(first) = module.first() else { continue };
        let code = code(&std::fs::read_to_string(&file).unwrap());
        for name in after(&code, "crate::") {
            if name != first {
                top.entry(first.clone()).or_default().insert(name.to_owned());
            }
        }
        // Files of one folder: `crate::folder::file` and, from a file,
        // `super::file` (its own folder's root does not count).
        if let [folder, file_name, ..] = module.as_slice() {
            let siblings = inner.entry(folder.clone()).or_default();
            let own = format!("crate::{folder}::");
            let mut names = after(&code, &own);
            if module.len() == 2 {
                names.extend(after(&code, "super::"));
            }
            for name in names {
                if name != file_name && name != "super" {
                    siblings.entry(file_name.clone()).or_default().insert(name.to_owned());
                }
            }
        }
    }
    (top, inner)
}

/// A circle in `edges`, if any, as the path around it.
fn circle(edges: &Edges) -> Option<Vec<String>> {
    fn visit(node: &str, edges: &Edges, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

#[test]
fn every_import_points_down() {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let lib = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("src/lib.rs")).unwrap();
    for name in after(&code(&lib), "pub mod ") {
        assert!(layers.contains_key(name), "src/lib.rs declares `{name}`, which has no layer in tests/api/layout.rs");
    }
    let (top, _) = graph();
    let mut upward = Vec::new();
    for (from, imports) in &top {
        for to in imports {
            let (Some(a), Some(b)) = (layers.get(from.as_str()), layers.get(to.as_str())) else { continue };
            if a <= b {
                upward.push(format!("{from} (layer {a}) imports {to} (layer {b})"));
            }
        }
    }
    assert!(upward.is_empty(), "imports that do not point down:\n{}", upward.join("\n"));
    assert_eq!(circle(&top), None);
}

#[test]
fn no_folder_has_an_import_circle() {
    let (_, inner) = graph();
    for (folder, edges) in &inner {
        assert_eq!(circle(edges), None, "files of src/{folder}/ import each other in a circle");
    }
    // The check sees what it must: a made-up circle is found.
    let made: Edges = [("a", "b"), ("b", "c"), ("c", "a")]
        .iter()
        .map(|(x, y)| (x.to_string(), BTreeSet::from([y.to_string()])))
        .collect();
    assert_eq!(circle(&made).map(|c| c.len()), Some(4));
}

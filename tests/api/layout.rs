//! The layout keeps: read from the code itself (parsed as Rust with `syn`,
//! so a `#[cfg(test)]` item is left out and nothing else is), every
//! top-level module imports only modules of a lower layer (the table below,
//! which `src/lib.rs`'s tour follows), and inside each folder no files
//! import each other in a circle. A new top-level module must be given a
//! layer here, and the guard must read imports from it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

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
    ("sabr", 3),
    ("hls", 2),
    ("metrics", 1),
    ("net", 1),
    ("process", 1),
    ("redis", 1),
    ("traffic", 0),
    ("request_id", 0),
    ("lazy", 0),
];

/// One import the code is known to make, per top-level module (as the
/// importer, or for a leaf that imports nothing of the crate, as the
/// imported): the guard must see each, or it is not reading that module.
const KNOWN: &[(&str, &str)] = &[
    ("app", "http"),
    ("http", "service"),
    ("telemetry", "request_id"),
    ("config", "egress"),
    ("cobalt", "output"),
    ("cobalt", "hls"),
    ("service", "relay"),
    ("manifest", "relay"),
    ("subtitles", "upstream"),
    ("select", "extract"),
    ("cache", "redis"),
    ("live", "relay"),
    ("output", "relay"),
    ("extract", "process"),
    ("extract", "platform"),
    ("relay", "upstream"),
    ("relay", "sabr"),
    ("ratelimit", "redis"),
    ("upstream", "net"),
    ("egress", "net"),
    ("metrics", "traffic"),
    ("relay", "lazy"),
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

/// `#[cfg(test)]` (or `#[cfg(all(test, …))]`): code the build leaves out.
fn test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta.require_list().is_ok_and(|l| {
                let t = l.tokens.to_string();
                t == "test" || t.starts_with("all (test")
            })
    })
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item::*;
    match item {
        Const(i) => &i.attrs,
        Enum(i) => &i.attrs,
        ExternCrate(i) => &i.attrs,
        Fn(i) => &i.attrs,
        ForeignMod(i) => &i.attrs,
        Impl(i) => &i.attrs,
        Macro(i) => &i.attrs,
        Mod(i) => &i.attrs,
        Static(i) => &i.attrs,
        Struct(i) => &i.attrs,
        Trait(i) => &i.attrs,
        TraitAlias(i) => &i.attrs,
        Type(i) => &i.attrs,
        Union(i) => &i.attrs,
        Use(i) => &i.attrs,
        _ => &[],
    }
}

/// What one file imports: every `crate::`/`super::`/`self::` path in its
/// non-test code (`use` trees, paths in types and expressions, and paths
/// written inside macro calls), resolved to a path from the crate's root.
struct Reader {
    /// The module being read (the file's, plus inline `mod`s entered).
    module: Vec<String>,
    /// Crate paths, from the root: `crate::relay::Spec` is `["relay", "Spec"]`.
    paths: Vec<Vec<String>>,
    /// `use` paths read, of any crate: a file the guard reads has some.
    uses: usize,
}

impl Reader {
    fn read(module: Vec<String>, text: &str) -> Reader {
        let file = syn::parse_file(text).unwrap_or_else(|e| panic!("{}: {e}", module.join("/")));
        let mut reader = Reader { module, paths: Vec::new(), uses: 0 };
        reader.visit_file(&file);
        reader
    }

    /// `segments` as a path from the crate's root, if it is one of ours.
    fn resolve(&mut self, segments: &[String]) {
        let (mut base, mut rest) = match segments.first().map(String::as_str) {
            Some("crate") => (Vec::new(), &segments[1..]),
            Some("self") => (self.module.clone(), &segments[1..]),
            Some("super") => (self.module.clone(), segments),
            _ => return,
        };
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        if !base.is_empty() {
            self.paths.push(base);
        }
    }

    /// Each path a `use` tree names, in full.
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_leaf(prefix, Some(n.ident.to_string())),
            syn::UseTree::Rename(r) => self.use_leaf(prefix, Some(r.ident.to_string())),
            syn::UseTree::Glob(_) => self.use_leaf(prefix, None),
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| self.use_tree(prefix, t)),
        }
    }

    fn use_leaf(&mut self, prefix: &[String], last: Option<String>) {
        self.uses += 1;
        let mut full = prefix.to_vec();
        full.extend(last.filter(|l| l != "self"));
        self.resolve(&full);
    }

    /// `crate :: a :: b` sequences in a macro's tokens.
    fn tokens(&mut self, tokens: TokenStream) {
        let mut flat = Vec::new();
        fn walk(tokens: TokenStream, out: &mut Vec<Option<String>>) {
            for t in tokens {
                match t {
                    TokenTree::Group(g) => {
                        out.push(None);
                        walk(g.stream(), out);
                        out.push(None);
                    }
                    TokenTree::Ident(i) => out.push(Some(i.to_string())),
                    TokenTree::Punct(p) if p.as_char() == ':' => out.push(Some(":".into())),
                    _ => out.push(None),
                }
            }
        }
        walk(tokens, &mut flat);
        let mut i = 0;
        while i < flat.len() {
            let is = |j: usize, s: &str| flat.get(j).and_then(|t| t.as_deref()) == Some(s);
            if (is(i, "crate") || is(i, "super") || is(i, "self")) && is(i + 1, ":") && is(i + 2, ":") {
                let mut path = vec![flat[i].clone().unwrap()];
                let mut j = i + 3;
                while let Some(Some(name)) = flat.get(j).filter(|t| t.as_deref() != Some(":")) {
                    path.push(name.clone());
                    if !(is(j + 1, ":") && is(j + 2, ":")) {
                        break;
                    }
                    j += 3;
                }
                self.resolve(&path);
                i = j;
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Reader {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if test_only(item_attrs(item)) {
            return;
        }
        match item {
            syn::Item::Mod(m) if m.content.is_some() => {
                self.module.push(m.ident.to_string());
                syn::visit::visit_item_mod(self, m);
                self.module.pop();
            }
            syn::Item::Use(u) => self.use_tree(&mut Vec::new(), &u.tree),
            _ => syn::visit::visit_item(self, item),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Fn(f) => &f.attrs,
            syn::ImplItem::Const(c) => &c.attrs,
            syn::ImplItem::Type(t) => &t.attrs,
            _ => return syn::visit::visit_impl_item(self, item),
        };
        if !test_only(attrs) {
            syn::visit::visit_impl_item(self, item);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.resolve(&segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

/// What the guard read: imports between top-level modules, inside each
/// folder between its files, and how many `use` paths each module has.
#[derive(Default)]
struct Graph {
    top: Edges,
    inner: BTreeMap<String, Edges>,
    uses: BTreeMap<String, usize>,
}

impl Graph {
    /// Adds one file, read as `module`, whose folder holds `siblings`.
    fn add(&mut self, module: &[String], text: &str, siblings: &BTreeSet<String>) {
        let Some(first) = module.first() else { return };
        let reader = Reader::read(module.to_vec(), text);
        *self.uses.entry(first.clone()).or_default() += reader.uses;
        for path in &reader.paths {
            if &path[0] != first {
                self.top.entry(first.clone()).or_default().insert(path[0].clone());
            } else if let ([_, own, ..], [_, other, ..]) = (module, path.as_slice())
                && own != other
                && siblings.contains(other)
            {
                self.inner.entry(first.clone()).or_default().entry(own.clone()).or_default().insert(other.clone());
            }
        }
    }
}

/// The files and folders of `dir` as module names.
fn module_names(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return BTreeSet::new() };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| p.with_extension("").file_name().unwrap().to_string_lossy().into())
        .collect()
}

fn graph() -> Graph {
    let src = Path::new(MANIFEST_DIR).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph = Graph::default();
    for file in files {
        let module = module_of(&src, &file);
        let siblings = module.first().map(|f| module_names(&src.join(f))).unwrap_or_default();
        graph.add(&module, &std::fs::read_to_string(&file).unwrap(), &siblings);
    }
    graph
}

/// The modules `src/lib.rs` declares (not those only its tests build).
fn declared() -> Vec<String> {
    let lib = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("src/lib.rs")).unwrap();
    let file = syn::parse_file(&lib).unwrap();
    file.items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Mod(m) if !test_only(&m.attrs) => Some(m.ident.to_string()),
            _ => None,
        })
        .collect()
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
    let graph = graph();
    for name in declared() {
        assert!(
            layers.contains_key(name.as_str()),
            "src/lib.rs declares `{name}`, which has no layer in tests/api/layout.rs"
        );
        // A module the guard reads no import from is one it cannot check.
        assert!(graph.uses.get(&name).is_some_and(|n| *n > 0), "the guard reads no import from src/{name}");
        let connected = graph.top.contains_key(&name) || graph.top.values().any(|to| to.contains(&name));
        assert!(connected, "the guard sees no import from or of `{name}`");
    }
    let mut upward = Vec::new();
    for (from, imports) in &graph.top {
        for to in imports {
            assert!(layers.contains_key(to.as_str()), "{from} imports `crate::{to}`, which is no module with a layer");
            let (Some(a), Some(b)) = (layers.get(from.as_str()), layers.get(to.as_str())) else { continue };
            if a <= b {
                upward.push(format!("{from} (layer {a}) imports {to} (layer {b})"));
            }
        }
    }
    assert!(upward.is_empty(), "imports that do not point down:\n{}", upward.join("\n"));
    assert_eq!(circle(&graph.top), None);
}

/// What `http/` may not import: the use cases (`service`, `cobalt::plays`)
/// do the work of the layers below; a route parses, calls one of them and
/// writes the answer.
const NOT_FOR_HTTP: &[&str] = &["relay", "cache", "extract"];

/// No file of `src/http/` imports the relay, the cache or the extractor:
/// manifests, cobalt's plays, HLS rewriting and the stream plans live in
/// the use cases, where no route can grow them back.
#[test]
fn routes_leave_the_work_to_the_use_cases() {
    let src = Path::new(MANIFEST_DIR).join("src");
    let mut files = Vec::new();
    sources(&src.join("http"), &mut files);
    assert!(files.len() > 10, "the guard reads src/http/");
    let mut found = Vec::new();
    for file in files {
        let reader = Reader::read(module_of(&src, &file), &std::fs::read_to_string(&file).unwrap());
        for path in reader.paths.iter().filter(|p| NOT_FOR_HTTP.contains(&p[0].as_str())) {
            found.push(format!("{} imports crate::{}", file.strip_prefix(&src).unwrap().display(), path.join("::")));
        }
    }
    assert!(found.is_empty(), "routes doing a use case's work:\n{}", found.join("\n"));
    // The same reader sees such an import when one is there.
    let reader = Reader::read(vec!["http".into(), "x".into()], "use crate::relay::Relay;\nfn f() {}\n");
    assert!(reader.paths.iter().any(|p| p[0] == "relay"));
}

/// The guard sees what the code is known to import, for every module.
#[test]
fn the_guard_sees_a_known_import_of_every_module() {
    let graph = graph();
    for (from, to) in KNOWN {
        assert!(graph.top.get(*from).is_some_and(|t| t.contains(*to)), "the guard does not see {from} import {to}");
    }
    let named: BTreeSet<&str> = KNOWN.iter().flat_map(|(a, b)| [*a, *b]).collect();
    for (module, _) in LAYERS {
        assert!(named.contains(module), "`{module}` has no known import in KNOWN");
    }
}

/// The reader, on made-up files: a test-only `use` near the top cuts
/// nothing after it; grouped, nested, `super::` and macro paths are seen;
/// test modules are not.
#[test]
fn the_reader_skips_test_code_only() {
    let text = "use std::sync::Arc;\n#[cfg(test)]\nuse crate::app::A;\nuse crate::{relay::{Spec, store}, select::Quality};\n\
                fn f() { let _ = crate::metrics::M::new(); tracing::info!(x = ?crate::net::guard()); }\n\
                use super::other::Thing;\n#[cfg(test)]\nmod tests { use crate::http::H; }\n";
    let mut g = Graph::default();
    let siblings = BTreeSet::from(["other".to_owned(), "me".to_owned()]);
    g.add(&["cobalt".into(), "me".into()], text, &siblings);
    let seen: Vec<&str> = g.top["cobalt"].iter().map(String::as_str).collect();
    assert_eq!(seen, ["metrics", "net", "relay", "select"]);
    assert_eq!(g.inner["cobalt"]["me"], BTreeSet::from(["other".to_owned()]));
    assert_eq!(g.uses["cobalt"], 5);
}

#[test]
fn no_folder_has_an_import_circle() {
    let graph = graph();
    for (folder, edges) in &graph.inner {
        assert_eq!(circle(edges), None, "files of src/{folder}/ import each other in a circle");
    }
    assert!(graph.inner.get("relay").is_some_and(|e| !e.is_empty()), "the guard reads the files of src/relay/");
    // The check sees what it must: a made-up circle is found.
    let made: Edges = [("a", "b"), ("b", "c"), ("c", "a")]
        .iter()
        .map(|(x, y)| (x.to_string(), BTreeSet::from([y.to_string()])))
        .collect();
    assert_eq!(circle(&made).map(|c| c.len()), Some(4));
}

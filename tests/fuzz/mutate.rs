//! Inputs for the fuzz targets: the corpus under `tests/fuzz/corpus/`, and
//! proptest strategies that mutate it the way a fuzzer does (insert, delete,
//! duplicate, replace, splice in tokens that parsers care about), so the
//! generated inputs stay close to what the parsers really read.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::Config;

/// Cases per target: `REELAY_FUZZ_CASES` (default 20,000: about a second
/// each in CI; raise it for a longer hunt).
pub fn config() -> Config {
    let cases = std::env::var("REELAY_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// [`config`] with a `divisor`-th of the cases, for slow targets.
pub fn config_scaled(divisor: u32) -> Config {
    let c = config();
    Config { cases: (c.cases / divisor).max(1), ..c }
}

/// The corpus of `target`: every file, and for `.txt` files every line
/// (lists of one-line inputs: links, `Range` values, tokens).
pub fn corpus(target: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(target);
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).collect();
    files.sort_by_key(|f| f.as_ref().map(|f| f.path()).ok());
    for file in files {
        let path = file.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if path.extension().is_some_and(|e| e == "txt") {
            out.extend(text.lines().map(str::to_owned));
        } else {
            out.push(text);
        }
    }
    assert!(!out.is_empty(), "empty corpus: {}", dir.display());
    out
}

/// The corpus of a binary target: every file's bytes as they are.
pub fn corpus_bytes(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    let out: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!out.is_empty(), "empty corpus: {}", dir.display());
    out
}

/// Pieces that parsers split on or treat specially.
const TOKENS: &[&str] = &[
    "",
    "%",
    "%00",
    "%2F",
    "%FF",
    "..",
    "/",
    "//",
    "://",
    "?",
    "#",
    "&",
    "=",
    ",",
    "-",
    ":",
    ";",
    "\"",
    "'",
    "\\",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\0",
    "\u{7f}",
    "é",
    "\u{202e}",
    "[",
    "]",
    "@",
    "0",
    "-1",
    "18446744073709551616",
    "99999999999999999999",
    "1e308",
    "NaN",
    "null",
    "{}",
    "[]",
    "#EXT",
    "#EXT-X-STREAM-INF:",
    "URI=\"",
    "#EXT-X-MAP:URI=\"",
    "bytes=",
    "youtube.com",
    "youtu.be/",
    "watch?v=",
    "BV",
    "av",
    "status/",
    "http://",
    "https://",
    "data:",
    "javascript:",
    "xn--",
    "TRUE",
    "FALSE",
    "#HttpOnly_",
];

/// One edit: a kind, two positions, a token.
type Edit = (u8, usize, usize, &'static str);

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec((0u8..5, any::<usize>(), any::<usize>(), prop::sample::select(TOKENS)), 0..8)
}

/// A corpus entry with up to eight edits, as text.
pub fn text(corpus: Vec<String>) -> impl Strategy<Value = String> {
    (prop::sample::select(corpus), edits(), any::<char>()).prop_map(|(seed, edits, c)| {
        let mut s: Vec<char> = seed.chars().collect();
        for (kind, a, b, token) in edits {
            apply(&mut s, kind, a, b, &token.chars().collect::<Vec<_>>(), c);
        }
        s.into_iter().collect()
    })
}

/// A corpus entry with up to eight edits, as bytes (not always UTF-8).
pub fn bytes(corpus: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    raw(corpus.into_iter().map(String::into_bytes).collect())
}

/// [`bytes`] over a binary corpus.
pub fn raw(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(corpus), edits(), any::<u8>()).prop_map(|(seed, edits, byte)| {
        let mut s = seed;
        for (kind, a, b, token) in edits {
            apply(&mut s, kind, a, b, token.as_bytes(), byte);
        }
        s
    })
}

fn apply<T: Clone>(s: &mut Vec<T>, kind: u8, a: usize, b: usize, token: &[T], one: T) {
    let len = s.len();
    let (i, j) = if len == 0 { (0, 0) } else { (a % (len + 1), b % (len + 1)) };
    // A piece of at most 64 items between the two positions.
    let lo = i.min(j);
    let hi = i.max(j).min(lo.saturating_add(64));
    match kind {
        0 => drop(s.splice(i..i, token.iter().cloned())),
        1 => drop(s.drain(lo..hi)),
        2 => {
            let piece: Vec<T> = s[lo..hi].to_vec();
            s.splice(hi..hi, piece);
        }
        3 if i < len => s[i] = one,
        _ => s.insert(i, one),
    }
}

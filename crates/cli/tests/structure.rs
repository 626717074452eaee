//! The shape of the source tree, checked as a test so that it stays as `architecture.md` says:
//! no file of a crate's `src` imports (through any chain of files) a file that imports it back,
//! and no file is over 1,000 lines. A parent module and its own children are one unit here (a
//! `mod.rs` declaring and re-exporting its children, the children using their parent's items),
//! as `farm-studio look` counts them.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a source file may be.
const MAX_LINES: usize = 1000;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, with its module path (`["app", "context"]`; the crate root is
/// `[]`).
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(src).unwrap().with_extension("");
                let mut path: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    path.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    path.pop();
                }
                out.insert(path, p);
            }
        }
    }
    out
}

/// The paths a file names through `crate::` and `super::`, groups expanded
/// (`crate::app::{access::Staff, App}` gives `app::access::Staff` and `app::App`), each as
/// segments from the crate root.
fn named_paths(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for (start, prefix) in [("crate::", 0usize), ("super::", 1)] {
        let mut from = 0;
        while let Some(i) = text[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            // Only whole words: not `some_crate::` or `self.super::`.
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let base: Vec<String> = if prefix == 0 {
                Vec::new()
            } else {
                // `super` of module `a::b` (`a/b.rs` or `a/b/mod.rs`) is `a`.
                module[..module.len().saturating_sub(1)].to_vec()
            };
            expand(&text[from..], base, &mut out);
        }
    }
    out
}

/// Reads one path (or group) from the start of `rest` onto `prefix`.
fn expand(rest: &str, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut s = rest;
    loop {
        let ident: String = s
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            if let Some(group) = s.strip_prefix('{') {
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            expand(item.trim(), prefix.clone(), out);
                            return;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            expand(item.trim(), prefix.clone(), out);
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
            }
            break;
        }
        s = &s[ident.len()..];
        if ident != "self" {
            prefix.push(ident);
        }
        match s.strip_prefix("::") {
            Some(r) => s = r,
            None => break,
        }
    }
    out.push(prefix);
}

/// The file a path names: its longest prefix that is a module of the crate.
fn target<'a>(
    path: &[String],
    mods: &'a BTreeMap<Vec<String>, PathBuf>,
) -> Option<&'a Vec<String>> {
    (0..=path.len())
        .rev()
        .find_map(|n| mods.get_key_value(&path[..n]).map(|(k, _)| k))
}

/// Whether one module is the other or contains it.
fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Groups of files that import each other, in a crate's `src`.
fn cycles(src: &Path) -> Vec<Vec<String>> {
    let mods = modules(src);
    let mut edges: BTreeMap<&Vec<String>, BTreeSet<&Vec<String>>> = BTreeMap::new();
    for (m, file) in &mods {
        let text = std::fs::read_to_string(file).unwrap();
        for p in named_paths(&text, m) {
            if let Some(t) = target(&p, &mods) {
                if !related(m, t) {
                    edges.entry(m).or_default().insert(t);
                }
            }
        }
    }
    // Tarjan's strongly connected components.
    struct State<'a> {
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on: BTreeSet<&'a Vec<String>>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(
        v: &'a Vec<String>,
        edges: &BTreeMap<&'a Vec<String>, BTreeSet<&'a Vec<String>>>,
        st: &mut State<'a>,
    ) {
        let n = st.index.len();
        st.index.insert(v, n);
        st.low.insert(v, n);
        st.stack.push(v);
        st.on.insert(v);
        for &w in edges.get(v).into_iter().flatten() {
            if !st.index.contains_key(w) {
                visit(w, edges, st);
                let lw = st.low[w];
                let lv = st.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if st.on.contains(w) {
                let iw = st.index[w];
                let lv = st.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if st.low[v] == st.index[v] {
            let mut group = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on.remove(w);
                group.push(if w.is_empty() {
                    "lib".to_string()
                } else {
                    w.join("::")
                });
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                st.found.push(group);
            }
        }
    }
    let mut st = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        found: Vec::new(),
    };
    for m in mods.keys() {
        if !st.index.contains_key(m) {
            visit(m, &edges, &mut st);
        }
    }
    st.found
}

fn crate_sources() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let mut problems = Vec::new();
    for src in crate_sources() {
        for group in cycles(&src) {
            problems.push(format!("{}: {}", src.display(), group.join(" <-> ")));
        }
    }
    assert!(
        problems.is_empty(),
        "files that import each other (move what both need into a module of its own):\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let mut long = Vec::new();
    for src in crate_sources() {
        for file in modules(&src).values() {
            let n = std::fs::read_to_string(file).unwrap().lines().count();
            if n > MAX_LINES {
                long.push(format!("{} ({n} lines)", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (split them by what they do):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_ignores_a_parent_and_its_child() {
    let dir = tempdir("structure");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("app")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod app; mod a; mod b; mod c;").unwrap();
    std::fs::write(src.join("app/mod.rs"), "mod x; pub use x::Y;").unwrap();
    std::fs::write(src.join("app/x.rs"), "use super::Z; pub struct Y;").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::{self, B};").unwrap();
    std::fs::write(src.join("b.rs"), "pub struct B; fn f() { crate::c::g() }").unwrap();
    std::fs::write(src.join("c.rs"), "use crate::{app::Y, a::A};").unwrap();
    assert_eq!(cycles(&src), vec![vec!["a", "b", "c"]]);
    std::fs::write(src.join("c.rs"), "use crate::app::Y; use some_crate::a::A;").unwrap();
    assert!(cycles(&src).is_empty());
    // Siblings through `super`, and a `mod.rs` whose `super` is its parent's module.
    std::fs::write(src.join("app/x.rs"), "use super::z::Z; pub struct Y;").unwrap();
    std::fs::write(src.join("app/z.rs"), "use super::x::Y; pub struct Z;").unwrap();
    assert_eq!(cycles(&src), vec![vec!["app::x", "app::z"]]);
    std::fs::write(src.join("app/z.rs"), "pub struct Z;").unwrap();
    std::fs::write(src.join("app/mod.rs"), "mod x; mod z; use super::c::C;").unwrap();
    std::fs::write(src.join("c.rs"), "use crate::app::Y;").unwrap();
    assert_eq!(cycles(&src), vec![vec!["app", "c"]]);
}

/// A fresh scratch folder under the build's target folder.
fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("crest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every `Result<…, String>` in `text`, as line numbers: the error type of a `Result` spelled
/// `String` (found by matching the `Result<…>` brackets).
fn string_results(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find("Result<") {
        let start = from + i + "Result<".len();
        from = start;
        let (mut depth, mut last_comma, mut end) = (1, None, None);
        for (j, &b) in bytes.iter().enumerate().skip(start) {
            match b {
                b'<' => depth += 1,
                b'>' if depth == 1 => {
                    end = Some(j);
                    break;
                }
                b'>' => depth -= 1,
                b',' if depth == 1 => last_comma = Some(j),
                b';' | b'{' => break,
                _ => {}
            }
        }
        if let (Some(c), Some(e)) = (last_comma, end) {
            if text[c + 1..e].trim() == "String" {
                out.push(text[..start].lines().count());
            }
        }
    }
    out
}

#[test]
fn no_library_function_fails_with_a_bare_string() {
    let mut found = Vec::new();
    for src in crate_sources() {
        for file in modules(&src).values() {
            for line in string_results(&std::fs::read_to_string(file).unwrap()) {
                found.push(format!("{}:{line}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "Result<_, String> (give the error a type that keeps its cause):\n{}",
        found.join("\n")
    );
    assert_eq!(
        string_results("fn a() -> Result<Vec<(u8, String)>, String> {}\nfn b() -> Result<String, io::Error> {}"),
        vec![1]
    );
}

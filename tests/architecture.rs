//! The layer rule of `src/`, checked on the source text.
//!
//! Every top-level module of the crate sits in a layer (see [`LAYERS`] and
//! `docs/ARCHITECTURE.md`). A module may use modules of its own layer and of lower layers, never
//! of a higher one; `lab` must not use `cli` or `exporter` although they are not above it.
//! `lib.rs` and `main.rs` are exempt.
//!
//! The scanner reads every `.rs` file under `src/`, blanks out comments, string and character
//! literals (keeping line numbers), and collects every path that starts with `crate::`
//! (`$crate::` in macros), `super::` or `self::`, including grouped `use` trees and paths in
//! expressions and types. `super::` and `self::` are resolved against the file's module path
//! (and any inline `mod name { ... }` around them), so a `super::` that climbs out of its
//! top-level module is checked like a `crate::` path.
//!
//! A second check builds the graph between second-level modules (`probe::steps`, `net::tls`,
//! ...; a file deeper down counts as its second-level ancestor, a top-level `mod.rs` or single
//! file as the module itself) and asserts it has no cycle. Edges from a module to its own
//! submodules are left out: a `mod.rs` declares and drives its children, and the children use
//! the types it defines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The layers, lowest first. A module may use its own layer and the ones below.
const LAYERS: &[(&str, u8)] = &[
    ("model", 0),
    ("protocol", 1),
    ("diagnose", 2),
    ("net", 3),
    ("probe", 4),
    ("config", 5),
    ("render", 6),
    ("exporter", 7),
    ("cli", 8),
    ("lab", 8),
];

/// Uses the layer order alone would allow but the architecture forbids: (from, to).
const FORBIDDEN: &[(&str, &str)] = &[("lab", "cli"), ("lab", "exporter")];

/// Files that are not part of any layer.
const EXEMPT: &[&str] = &["lib.rs", "main.rs"];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn allowed(from: &str, to: &str) -> bool {
    if from == to {
        return true;
    }
    if FORBIDDEN.contains(&(from, to)) {
        return false;
    }
    match (layer(from), layer(to)) {
        (Some(f), Some(t)) => t <= f,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Source files

/// One source file: its path as printed (`src/net/tls.rs`), its module path, its text.
struct SourceFile {
    display: String,
    module: Vec<String>,
    text: String,
}

/// The module path of a file relative to `src/`: `net/tls.rs` is `net::tls`, `probe/mod.rs` is
/// `probe`, `config.rs` is `config`.
fn module_path(relative: &str) -> Vec<String> {
    let mut parts: Vec<String> = relative.split('/').map(str::to_owned).collect();
    if let Some(last) = parts.last_mut()
        && let Some(stem) = last.strip_suffix(".rs")
    {
        *last = stem.to_owned();
    }
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every layered `.rs` file under `src/` (`lib.rs` and `main.rs` left out).
fn source_files() -> Vec<SourceFile> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    walk(&src, &mut paths);
    let mut files = Vec::new();
    for path in paths {
        let relative = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if EXEMPT.contains(&relative.as_str()) {
            continue;
        }
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        files.push(SourceFile {
            display: format!("src/{relative}"),
            module: module_path(&relative),
            text,
        });
    }
    assert!(!files.is_empty(), "no source files under {}", src.display());
    files
}

// ---------------------------------------------------------------------------------------------
// Scanner

/// Blanks out comments (line, doc and nested block comments), string literals (plain, byte,
/// raw) and character literals, keeping every newline so line numbers stay right.
fn strip(source: &str) -> String {
    let c: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let is_ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        // Line comment (also `///` and `//!`).
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
            continue;
        }
        // Block comment, nested.
        if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
            continue;
        }
        // Raw string: r"..", r#".."#, br#".."#, cr".." (the prefix must start a token).
        let starts_token = i == 0 || !is_ident(c[i - 1]);
        if starts_token {
            let mut j = i;
            if (c[j] == 'b' || c[j] == 'c') && c.get(j + 1) == Some(&'r') {
                j += 1;
            }
            if c[j] == 'r' {
                let mut k = j + 1;
                let mut hashes = 0;
                while c.get(k) == Some(&'#') {
                    hashes += 1;
                    k += 1;
                }
                if c.get(k) == Some(&'"') {
                    // Find `"` followed by `hashes` hashes.
                    let mut end = k + 1;
                    while end < c.len() {
                        if c[end] == '"' && (1..=hashes).all(|h| c.get(end + h) == Some(&'#')) {
                            end += 1 + hashes;
                            break;
                        }
                        end += 1;
                    }
                    for &ch in &c[i..end.min(c.len())] {
                        out.push(blank(ch));
                    }
                    i = end;
                    continue;
                }
            }
        }
        // String literal (a `b` or `c` prefix stays, harmlessly).
        if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' && i + 1 < c.len() {
                    out.push(' ');
                    out.push(blank(c[i + 1]));
                    i += 2;
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
            if i < c.len() {
                out.push(' ');
                i += 1;
            }
            continue;
        }
        // Character literal ('x', '\n', '\u{..}', '"', '{'); a lifetime ('a) stays.
        if c[i] == '\'' {
            if next == Some('\\') {
                // Skip the escaped character: '\'' is one literal.
                let mut end = i + 3;
                while end < c.len() && c[end] != '\'' && c[end] != '\n' {
                    end += 1;
                }
                let end = (end + 1).min(c.len());
                for &ch in &c[i..end] {
                    out.push(blank(ch));
                }
                i = end;
                continue;
            }
            if c.get(i + 2) == Some(&'\'') {
                out.push_str("   ");
                i += 3;
                continue;
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

fn tokenize(stripped: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = stripped.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            tokens.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            tokens.push((Tok::PathSep, line));
            i += 2;
        } else {
            tokens.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    tokens
}

/// One path found in a file, resolved to an absolute module path.
#[derive(Debug, Clone)]
struct Reference {
    /// `src/...` path of the file.
    file: String,
    /// The file's module path.
    from: Vec<String>,
    line: usize,
    /// Absolute path (`["lab", "pki", "TestCa"]`), a trailing `self` removed.
    path: Vec<String>,
    /// Inside a `#[cfg(test)] mod`.
    in_test: bool,
}

fn is_ident(tok: Option<&(Tok, usize)>, name: &str) -> bool {
    matches!(tok, Some((Tok::Ident(s), _)) if s == name)
}

fn is_sep(tok: Option<&(Tok, usize)>) -> bool {
    matches!(tok, Some((Tok::PathSep, _)))
}

fn is_punct(tok: Option<&(Tok, usize)>, p: char) -> bool {
    matches!(tok, Some((Tok::Punct(q), _)) if *q == p)
}

/// Parses a path or `use` tree starting at `j`, every leaf prefixed with `prefix`. Returns the
/// index after the tree.
fn parse_tree(
    t: &[(Tok, usize)],
    mut j: usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, usize)>,
) -> usize {
    let mut path = prefix.to_vec();
    let mut first_line = None;
    loop {
        match t.get(j) {
            Some((Tok::Ident(name), line)) if name != "as" => {
                path.push(name.clone());
                first_line.get_or_insert(*line);
                j += 1;
                if is_sep(t.get(j)) {
                    j += 1;
                    continue;
                }
                if is_ident(t.get(j), "as") {
                    j += 2;
                }
                break;
            }
            Some((Tok::Punct('{'), _)) => {
                j += 1;
                loop {
                    if is_punct(t.get(j), '}') || j >= t.len() {
                        return j + 1;
                    }
                    let before = j;
                    j = parse_tree(t, j, &path, out);
                    if is_punct(t.get(j), ',') {
                        j += 1;
                    } else if j == before {
                        // Not a tree after all; stop here.
                        return j;
                    }
                }
            }
            Some((Tok::Punct('*'), line)) => {
                first_line.get_or_insert(*line);
                j += 1;
                break;
            }
            Some((_, line)) => {
                first_line.get_or_insert(*line);
                break;
            }
            None => break,
        }
    }
    if path.last().is_some_and(|s| s == "self") {
        path.pop();
    }
    if let Some(line) = first_line {
        out.push((path, line));
    }
    j
}

/// Every `crate::`, `$crate::`, `super::` and `self::` path of one file, resolved.
fn scan(file: &str, module: &[String], source: &str) -> Vec<Reference> {
    let t = tokenize(&strip(source));
    let mut refs = Vec::new();
    // Inline modules: (name, brace depth inside them, under `#[cfg(test)]`).
    let mut inline: Vec<(String, usize, bool)> = Vec::new();
    let cfg_test = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".to_owned()),
        Tok::Punct('('),
        Tok::Ident("test".to_owned()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let mut depth = 0usize;
    let mut i = 0;
    while i < t.len() {
        let prev_is_sep = i > 0 && is_sep(t.get(i - 1));
        match &t[i].0 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d, _)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(word) if word == "mod" => {
                if let Some((Tok::Ident(name), _)) = t.get(i + 1)
                    && is_punct(t.get(i + 2), '{')
                {
                    // `#[cfg(test)]` right before `mod` (or `pub mod`, `pub(crate) mod`).
                    let attributed = (i.saturating_sub(5)..=i)
                        .any(|k| k >= 7 && t[k - 7..k].iter().map(|(tok, _)| tok).eq(&cfg_test));
                    let test = attributed || inline.last().is_some_and(|(_, _, test)| *test);
                    inline.push((name.clone(), depth + 1, test));
                }
            }
            Tok::Ident(word)
                if (word == "crate" || word == "super" || word == "self")
                    && !prev_is_sep
                    && is_sep(t.get(i + 1)) =>
            {
                let mut current: Vec<String> = module.to_vec();
                current.extend(inline.iter().map(|(n, _, _)| n.clone()));
                let in_test = inline.last().is_some_and(|(_, _, test)| *test);
                let mut j = i;
                let base: Option<Vec<String>> = if word == "crate" {
                    j += 2;
                    Some(Vec::new())
                } else if word == "self" {
                    j += 2;
                    Some(current)
                } else {
                    let mut up = 0;
                    while is_ident(t.get(j), "super") && is_sep(t.get(j + 1)) {
                        up += 1;
                        j += 2;
                    }
                    current
                        .len()
                        .checked_sub(up)
                        .map(|keep| current[..keep].to_vec())
                };
                let mut found = Vec::new();
                let end = parse_tree(&t, j, base.as_deref().unwrap_or(&[]), &mut found);
                if base.is_some() {
                    for (path, line) in found {
                        if !path.is_empty() {
                            refs.push(Reference {
                                file: file.to_owned(),
                                from: module.to_vec(),
                                line,
                                path,
                                in_test,
                            });
                        }
                    }
                }
                i = end.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    refs
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Every use that breaks the layer rule, one line per file:line with the imports and the
/// source line.
fn layer_violations(refs: &[Reference], sources: &BTreeMap<String, String>) -> Vec<String> {
    /// The offending uses of one line.
    struct Offence<'a> {
        from: &'a str,
        to: &'a str,
        in_test: bool,
        paths: BTreeSet<String>,
    }
    let mut bad: BTreeMap<(&str, usize), Offence<'_>> = BTreeMap::new();
    for r in refs {
        let from = r.from[0].as_str();
        let to = r.path[0].as_str();
        if allowed(from, to) {
            continue;
        }
        bad.entry((r.file.as_str(), r.line))
            .or_insert_with(|| Offence {
                from,
                to,
                in_test: r.in_test,
                paths: BTreeSet::new(),
            })
            .paths
            .insert(format!("crate::{}", r.path.join("::")));
    }
    bad.into_iter()
        .map(|((file, line), offence)| {
            let Offence {
                from,
                to,
                in_test,
                paths,
            } = offence;
            let text = sources
                .get(file)
                .and_then(|s| s.lines().nth(line - 1))
                .map_or("", str::trim);
            let describe = |m: &str| {
                layer(m).map_or_else(|| format!("{m} (no layer)"), |l| format!("{m} (layer {l})"))
            };
            let paths: Vec<String> = paths.into_iter().collect();
            format!(
                "{file}:{line}: {} -> {}: {}{}\n        {text}",
                describe(from),
                describe(to),
                paths.join(", "),
                if in_test {
                    " (in #[cfg(test)] code)"
                } else {
                    ""
                }
            )
        })
        .collect()
}

/// The second-level node of a module path: `probe::steps::post` is `probe::steps`.
fn node(path: &[String], submodules: &BTreeSet<(String, String)>) -> String {
    match path {
        [top, sub, ..] if submodules.contains(&(top.clone(), sub.clone())) => {
            format!("{top}::{sub}")
        }
        [top, ..] => top.clone(),
        [] => String::new(),
    }
}

/// Every cycle of the second-level module graph, one per strongly connected component, each
/// edge with the file:line that makes it.
fn cycles(refs: &[Reference], submodules: &BTreeSet<(String, String)>) -> Vec<String> {
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for r in refs {
        let from = node(&r.from, submodules);
        let to = node(&r.path, submodules);
        if from == to || to.starts_with(&format!("{from}::")) {
            continue;
        }
        // One witness per edge, preferring code that is not test-only.
        let witness = format!(
            "{}:{}{}",
            r.file,
            r.line,
            if r.in_test {
                ", in #[cfg(test)] code"
            } else {
                ""
            }
        );
        let slot = edges.entry(from).or_default().entry(to).or_default();
        if slot.is_empty() || (slot.ends_with("code") && !r.in_test) {
            *slot = witness;
        }
    }
    let nodes: BTreeSet<String> = edges
        .iter()
        .flat_map(|(f, tos)| std::iter::once(f.clone()).chain(tos.keys().cloned()))
        .collect();
    let reach = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.to_owned()];
        while let Some(n) = stack.pop() {
            for next in edges.get(&n).into_iter().flat_map(|m| m.keys()) {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<String, BTreeSet<String>> =
        nodes.iter().map(|n| (n.clone(), reach(n))).collect();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for start in &nodes {
        if reported.contains(start) || !reachable[start].contains(start) {
            continue;
        }
        // The component of `start`: nodes that reach it and that it reaches.
        let component: BTreeSet<String> = reachable[start]
            .iter()
            .filter(|n| reachable[*n].contains(start))
            .cloned()
            .collect();
        reported.extend(component.iter().cloned());
        // Shortest way back to `start` inside the component (breadth first).
        let mut parent: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        let mut closing = None;
        while let Some(n) = queue.pop_front() {
            for next in edges.get(&n).into_iter().flat_map(|m| m.keys()) {
                if next == start {
                    closing = Some(n.clone());
                    break;
                }
                if component.contains(next) && !parent.contains_key(next) {
                    parent.insert(next.clone(), n.clone());
                    queue.push_back(next.clone());
                }
            }
            if closing.is_some() {
                break;
            }
        }
        let mut back = Vec::new();
        let mut n = closing.expect("a node in a cycle reaches itself");
        while n != *start {
            back.push(n.clone());
            n = parent[&n].clone();
        }
        let mut path = vec![start.clone()];
        path.extend(back.into_iter().rev());
        path.push(start.clone());
        let steps: Vec<String> = path
            .windows(2)
            .map(|w| format!("{} -> {}  ({})", w[0], w[1], edges[&w[0]][&w[1]]))
            .collect();
        out.push(format!(
            "cycle through {}:\n        {}",
            component.iter().cloned().collect::<Vec<_>>().join(", "),
            steps.join("\n        ")
        ));
    }
    out
}

fn scan_tree() -> (Vec<SourceFile>, Vec<Reference>) {
    let files = source_files();
    let refs = files
        .iter()
        .flat_map(|f| scan(&f.display, &f.module, &f.text))
        .collect();
    (files, refs)
}

fn submodules_of(files: &[SourceFile]) -> BTreeSet<(String, String)> {
    files
        .iter()
        .filter(|f| f.module.len() >= 2)
        .map(|f| (f.module[0].clone(), f.module[1].clone()))
        .collect()
}

#[test]
fn every_top_level_module_has_a_layer() {
    let files = source_files();
    let modules: BTreeSet<&str> = files.iter().map(|f| f.module[0].as_str()).collect();
    let table: BTreeSet<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
    let missing: Vec<&&str> = modules.difference(&table).collect();
    let stale: Vec<&&str> = table.difference(&modules).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "the layer table of tests/architecture.rs (and docs/ARCHITECTURE.md) is out of date: \
         modules without a layer {missing:?}, layers without a module {stale:?}"
    );
}

#[test]
fn imports_point_down_the_layer_order() {
    let (files, refs) = scan_tree();
    let sources: BTreeMap<String, String> = files
        .iter()
        .map(|f| (f.display.clone(), f.text.clone()))
        .collect();
    let violations = layer_violations(&refs, &sources);
    assert!(
        violations.is_empty(),
        "{} use(s) break the layer order (a module may use its own layer and lower ones; \
         lab must not use cli or exporter; see docs/ARCHITECTURE.md):\n    {}",
        violations.len(),
        violations.join("\n    ")
    );
}

#[test]
fn second_level_modules_form_no_cycle() {
    let (files, refs) = scan_tree();
    let found = cycles(&refs, &submodules_of(&files));
    assert!(
        found.is_empty(),
        "the module graph has {} cycle(s):\n    {}",
        found.len(),
        found.join("\n    ")
    );
}

// ---------------------------------------------------------------------------------------------
// The scanner itself

fn fake(file: &str, source: &str) -> Vec<Reference> {
    let relative = file.strip_prefix("src/").unwrap();
    scan(file, &module_path(relative), source)
}

fn fake_violations(file: &str, source: &str) -> Vec<(usize, String)> {
    let refs = fake(file, source);
    refs.iter()
        .filter(|r| !allowed(&r.from[0], &r.path[0]))
        .map(|r| (r.line, r.path.join("::")))
        .collect()
}

#[test]
fn the_scanner_reports_upward_imports_and_ignores_comments_and_strings() {
    let source = r##"//! Mentions crate::exporter in the module docs.
use super::dns::Dns;
use crate::{protocol::pox, exporter::store::Store};
/// crate::cli in a doc comment, "crate::cli" too.
const S: &str = "crate::cli::run \" crate::lab";
const C: [char; 4] = ['"', '\'', '\\', '{'];
fn f<'a>(x: &'a str) { let _ = crate::render::trace::render; /* crate::lab /* nested */ */ }
const R: &str = r#"crate::cli "quoted" "#;
#[cfg(test)]
mod tests {
    use super::super::super::lab::pki::TestCa;
    use super::*;
}
fn g() -> $crate::config::Config {}
"##;
    assert_eq!(
        fake_violations("src/net/fake.rs", source),
        vec![
            (3, "exporter::store::Store".to_owned()),
            (7, "render::trace::render".to_owned()),
            (11, "lab::pki::TestCa".to_owned()),
            (14, "config::Config".to_owned()),
        ]
    );
    // The allowed uses are found too, resolved.
    let all: Vec<String> = fake("src/net/fake.rs", source)
        .iter()
        .map(|r| r.path.join("::"))
        .collect();
    assert!(all.contains(&"net::dns::Dns".to_owned()), "{all:?}");
    assert!(all.contains(&"protocol::pox".to_owned()), "{all:?}");
    assert!(all.contains(&"net::fake".to_owned()), "{all:?}");

    // The report names the file, the line and the import.
    let refs = fake("src/net/fake.rs", source);
    let sources = BTreeMap::from([("src/net/fake.rs".to_owned(), source.to_owned())]);
    let report = layer_violations(&refs, &sources);
    assert_eq!(report.len(), 4, "{report:#?}");
    assert!(report[0].starts_with("src/net/fake.rs:3: net (layer 3) -> exporter (layer 7)"));
    assert!(report[0].contains("crate::exporter::store::Store"));
    assert!(report[0].contains("use crate::{protocol::pox, exporter::store::Store};"));
    assert!(!report[0].contains("cfg(test)"));
    assert!(report[2].starts_with("src/net/fake.rs:11: net (layer 3) -> lab (layer 8)"));
    assert!(
        report[2].contains("(in #[cfg(test)] code)"),
        "{}",
        report[2]
    );
}

#[test]
fn super_from_the_top_of_a_module_reaches_sibling_modules() {
    // From `src/probe/mod.rs`, `super::` is the crate root.
    let source =
        "use super::cli::Args;\nuse super::net::dns::Dns;\nuse super::{model, protocol::srv};\n";
    assert_eq!(
        fake_violations("src/probe/mod.rs", source),
        vec![(1, "cli::Args".to_owned())]
    );
    assert_eq!(
        fake_violations(
            "src/config.rs",
            "fn f() { super::render::trace::render(); }"
        ),
        vec![(1, "render::trace::render".to_owned())]
    );
    // Inside a module, super:: stays there.
    assert!(fake_violations("src/probe/steps/post.rs", "use super::super::engine::x;").is_empty());
}

#[test]
fn lab_must_not_use_cli_or_exporter() {
    let source =
        "use crate::exporter::Exporter;\nuse crate::cli::run;\nuse crate::probe::Prober;\n";
    assert_eq!(
        fake_violations("src/lab/world.rs", source),
        vec![
            (1, "exporter::Exporter".to_owned()),
            (2, "cli::run".to_owned())
        ]
    );
    assert!(fake_violations("src/cli/demo.rs", "use crate::lab::scenarios;").is_empty());
}

#[test]
fn the_cycle_check_reports_the_cycle_path() {
    let mut refs = fake("src/protocol/a.rs", "use crate::protocol::b::X;");
    refs.extend(fake("src/protocol/b.rs", "fn f() {\n    super::c::g();\n}"));
    refs.extend(fake("src/protocol/c.rs", "use super::a::Y;"));
    let submodules = BTreeSet::from([
        ("protocol".to_owned(), "a".to_owned()),
        ("protocol".to_owned(), "b".to_owned()),
        ("protocol".to_owned(), "c".to_owned()),
    ]);
    let found = cycles(&refs, &submodules);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("protocol::a -> protocol::b  (src/protocol/a.rs:1)"),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains("protocol::b -> protocol::c  (src/protocol/b.rs:2)"),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains("protocol::c -> protocol::a  (src/protocol/c.rs:1)"),
        "{}",
        found[0]
    );

    // A parent using its children and the children using the parent is not a cycle.
    let mut refs = fake("src/probe/mod.rs", "use self::steps::run;");
    refs.extend(fake("src/probe/steps/mod.rs", "use super::Prober;"));
    let submodules = BTreeSet::from([("probe".to_owned(), "steps".to_owned())]);
    assert!(cycles(&refs, &submodules).is_empty());
}

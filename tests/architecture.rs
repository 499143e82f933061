//! The layout's import rules, checked on the source itself so that breaking one fails the suite
//! rather than waiting for a reviewer:
//!
//! - the synchronous core (`src/engine/`) names no crate of the edges (Kafka, tokio, Prometheus,
//!   SQLite, PostgreSQL, HTTP, the command line, …: only the allow-list below), no module of the
//!   crate outside `engine`, and none of std's I/O (`std::fs`, `std::net`, `std::process`,
//!   `std::thread`, `std::env`);
//! - the scoring core (`src/score/`) names nothing of the streaming core and no edge either,
//!   only the domain's vocabulary (`engine::domain`: regions), which imports nothing itself.
//!
//! Test modules (`#[cfg(test)]`) are exempt: a core's tests may use the shipped configuration
//! and the simulator. A path is any `name::` in code outside comments and string literals.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Crates the core may use: data structures, parsing, hashing, exact decimals, time zones, and
/// memory (`memmap2`'s anonymous maps open no file; `bytemuck` views their bytes as words).
const ENGINE_CRATES: &[&str] = &[
    "bytemuck",
    "hashbrown",
    "hdrhistogram",
    "itoa",
    "jiff",
    "memchr",
    "memmap2",
    "rust_decimal",
    "serde",
    "serde_json",
    "sha2",
    "thiserror",
    "tracing",
    "xxhash_rust",
];

/// Crates the scoring core may use.
const SCORE_CRATES: &[&str] = &[
    "csv",
    "rust_decimal",
    "serde",
    "serde_json",
    "thiserror",
    "toml",
    "tracing",
];

/// std's modules that do I/O or reach outside the process.
const STD_IO: &[&str] = &["fs", "net", "process", "thread", "env"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every dependency of the package, as code names it (`rust-decimal` → `rust_decimal`).
fn dependencies() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    let mut names = BTreeSet::new();
    for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = manifest.get(table).and_then(|d| d.as_table()) {
            names.extend(deps.keys().map(|k| k.replace('-', "_")));
        }
    }
    assert!(
        names.contains("rdkafka"),
        "Cargo.toml's dependencies were not read"
    );
    names
}

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

/// The code of a file with comments, string and character literals blanked out (so a word in a
/// message or a doc comment is not an import) and `#[cfg(test)]` items removed.
fn code_of(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                // A raw string r#"…"#: find its closing quote and hashes.
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                j += 1;
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                i = j + close.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' => {
                // A character literal ('x', '\n', '\u{1F}') or a lifetime ('a).
                let rest = &text[i + 1..];
                let lit = if rest.starts_with('\\') {
                    rest.find('\'').map(|e| e + 2)
                } else {
                    let c = rest.chars().next().map_or(0, char::len_utf8);
                    (rest[c..].starts_with('\'')).then_some(c + 2)
                };
                match lit {
                    Some(len) => {
                        i += len;
                        out.push_str("' '");
                    }
                    None => {
                        out.push('\'');
                        i += 1;
                    }
                }
            }
            _ => {
                let c = text[i..].chars().next().unwrap();
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    strip_test_items(&out)
}

/// Removes each `#[cfg(test)]` item: up to its closing brace (or its semicolon; a field's
/// comma).
fn strip_test_items(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let mut depth = 0usize;
        let mut end = item.len();
        for (k, c) in item.char_indices() {
            match c {
                '{' => depth += 1,
                // A field or a struct literal's field ends the enclosing braces' item.
                '}' if depth == 0 => {
                    end = k;
                    break;
                }
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                // An item ends at its semicolon, a field at its comma.
                ';' | ',' if depth == 0 => {
                    end = k + 1;
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

/// The first three segments of every path in `code` (the third empty when there is none):
/// `tokio::sync::mpsc` → (`tokio`, `sync`, `mpsc`).
fn paths(code: &str) -> Vec<(String, String, String)> {
    let b = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let segment = |from: usize| {
        let mut e = from;
        while e < b.len() && ident(b[e]) {
            e += 1;
        }
        e
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        // The start of a path: an identifier not preceded by `.`, another identifier or a
        // segment and `::` (a leading `::`, as in `::tokio::spawn`, still starts one).
        let after_segment =
            i >= 3 && &b[i - 2..i] == b"::" && (ident(b[i - 3]) || b[i - 3] == b'>');
        let starts = (b[i].is_ascii_alphabetic() || b[i] == b'_')
            && (i == 0 || !(ident(b[i - 1]) || b[i - 1] == b'.'))
            && !after_segment;
        if !starts {
            i += 1;
            continue;
        }
        let s = i;
        i = segment(i);
        let first = &code[s..i];
        if code[i..].starts_with("::") {
            let e = segment(i + 2);
            let second = &code[i + 2..e];
            let third = if code[e..].starts_with("::") {
                &code[e + 2..segment(e + 2)]
            } else {
                ""
            };
            out.push((first.to_string(), second.to_string(), third.to_string()));
        }
    }
    out
}

/// Files of modules declared `#[cfg(test)] mod name;`: tests, exempt like inline test modules.
fn test_module_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        let dir = if f
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
        {
            f.parent().unwrap().to_path_buf()
        } else {
            f.with_extension("")
        };
        let mut rest = text.as_str();
        while let Some(at) = rest.find("#[cfg(test)]") {
            rest = &rest[at + "#[cfg(test)]".len()..];
            let item = rest.trim_start();
            let item = item.strip_prefix("pub ").unwrap_or(item);
            if let Some(decl) = item.strip_prefix("mod ")
                && let Some((name, _)) = decl.split_once(';')
                && !name.contains('{')
            {
                let name = name.trim();
                out.insert(dir.join(format!("{name}.rs")));
                out.insert(dir.join(name).join("mod.rs"));
            }
        }
    }
    out
}

/// Every rule broken under `dir`, as `file: reason`.
fn violations(dir: &str, allowed: &[&str], crate_modules: &[&str]) -> Vec<String> {
    let deps = dependencies();
    let mut files = Vec::new();
    rust_files(&root().join(dir), &mut files);
    assert!(!files.is_empty(), "no Rust files under {dir}");
    let tests_only = test_module_files(&files);
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !tests_only.contains(*f)) {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.strip_prefix(root()).unwrap().display().to_string();
        let mut seen = BTreeSet::new();
        for (first, second, third) in paths(&code_of(&text)) {
            let bad = if deps.contains(&first) && !allowed.contains(&first.as_str()) {
                Some(format!("names the crate `{first}`"))
            } else if first == "crate"
                && !crate_modules.contains(&second.as_str())
                && !crate_modules.contains(&format!("{second}::{third}").as_str())
            {
                Some(format!("names `crate::{second}`, outside its room"))
            } else if first == "std" && STD_IO.contains(&second.as_str()) {
                Some(format!("does I/O through `std::{second}`"))
            } else if first == "extern" {
                Some("declares an extern crate".to_string())
            } else {
                None
            };
            if let Some(reason) = bad
                && seen.insert(reason.clone())
            {
                found.push(format!("{name}: {reason}"));
            }
        }
    }
    found
}

#[test]
fn engine_imports_nothing_of_the_edges() {
    let v = violations("src/engine", ENGINE_CRATES, &["engine"]);
    assert!(
        v.is_empty(),
        "the synchronous core reaches outside:\n{}",
        v.join("\n")
    );
}

#[test]
fn score_imports_nothing_of_the_streaming_core() {
    let v = violations(
        "src/score",
        SCORE_CRATES,
        &["score", "engine::domain", "csv_text", "echo"],
    );
    assert!(
        v.is_empty(),
        "the scoring core reaches outside:\n{}",
        v.join("\n")
    );
}

/// The checker itself: each kind of breach is caught, and comments, strings and test modules
/// are not taken for code.
#[test]
fn the_checker_sees_what_it_must_and_nothing_else() {
    let code = code_of(
        r#"
//! Uses tokio::spawn in a comment only.
use crate::engine::time::Ts;
/* rdkafka::Consumer in a block comment */
fn f() { let s = "postgres::Client in a string"; let c = '{'; let r = r"tokio::x"; }
fn g<'a>(x: &'a str) -> &'a str { x }
use rusqlite::Connection;
fn h() { let _ = crate::kafka::run(); let _ = std::fs::read("x"); }
#[cfg(test)]
mod tests { use prometheus::Registry; fn t() { let x = '}'; } }
fn after() { ::tokio::spawn(); }
"#,
    );
    let p = paths(&code);
    let firsts: BTreeSet<&str> = p.iter().map(|(a, _, _)| a.as_str()).collect();
    assert!(firsts.contains("rusqlite"), "{p:?}");
    assert!(
        firsts.contains("tokio"),
        "a leading :: is still a path: {p:?}"
    );
    let has = |a: &str, b: &str, c: &str| p.contains(&(a.into(), b.into(), c.into()));
    assert!(has("crate", "kafka", "run"), "{p:?}");
    assert!(has("std", "fs", "read"), "{p:?}");
    assert!(has("crate", "engine", "time"), "{p:?}");
    for absent in ["rdkafka", "postgres", "prometheus"] {
        assert!(
            !firsts.contains(absent),
            "{absent} is only in a comment, string or test: {p:?}"
        );
    }
}

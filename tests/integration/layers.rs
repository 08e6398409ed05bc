//! The crate's layers, held by a test: every file of `src/` imports only the layers its own
//! layer may use (`docs/architecture.md` draws them). A path into another top-level module
//! (`crate::store::…`, `super::super::sync::…`, `crate::{vision, store}`) is an import; `mod x;`
//! declarations are not. The checker is plain text scanning of the code's own paths, with
//! comments and string literals removed first, and it is itself tested on made-up files so a
//! checker that finds nothing cannot pass for a clean house.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module of the library and the modules it may import. Everything not named is
/// forbidden: a layer never reaches up, and modules of one layer stay apart.
const RULES: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("vision", &["base"]),
    ("camera", &["base"]),
    ("hw", &["base"]),
    ("store", &["base"]),
    ("sync", &["base", "store"]),
    // The HR-terminal protocols (ZK pull, ADMS push): over the store, with sync's TLS setup.
    ("hr", &["base", "store", "sync"]),
    // The fleet server's update client: sync's TLS setup, nothing of the kiosk.
    ("update", &["base", "sync"]),
    (
        "kiosk",
        &["base", "vision", "camera", "hw", "store", "sync", "hr"],
    ),
    (
        "ui",
        &[
            "base", "vision", "camera", "hw", "store", "sync", "hr", "kiosk",
        ],
    ),
    // The hub is the backend: the wire protocol and the record codec, never the kiosk or CLI.
    ("hub", &["base", "store"]),
    // The top: every command, the demo and the benchmarks (which run a loopback hub).
    (
        "commands",
        &[
            "base", "vision", "camera", "hw", "store", "sync", "hr", "kiosk", "ui", "hub", "update",
        ],
    ),
];

/// Source text without comments, string and char literals (their contents are blanked), so
/// that a path mentioned in a doc comment or a message is not taken for an import.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'r' && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#')) {
            // Raw string r"…" or r#"…"#.
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
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // A one-character literal such as ':' (lifetimes have no closing quote here).
            i += 3;
            out.push_str("' '");
        } else if c == b'\'' && b.get(i + 1) == Some(&b'\\') {
            i += 2;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The top-level modules a file's code names, given the file's module path (`["kiosk",
/// "runner", "worker"]`).
fn imported_tops(code: &str, module: &[String]) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !is_ident(chars[i - 1]) && chars[i - 1] != ':';
        if !starts_word || !(chars[i] == 'c' || chars[i] == 's') {
            i += 1;
            continue;
        }
        // Read a path: ident (:: ident)* possibly ending in ::{ group }.
        let mut segs: Vec<String> = Vec::new();
        let mut j = i;
        loop {
            let s = j;
            while j < chars.len() && is_ident(chars[j]) {
                j += 1;
            }
            if s == j {
                break;
            }
            segs.push(chars[s..j].iter().collect());
            if chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
                j += 2;
                while chars.get(j).is_some_and(|c| c.is_whitespace()) {
                    j += 1;
                }
                if chars.get(j) == Some(&'{') {
                    // A group: each first segment inside it continues the path.
                    let close = chars[j..].iter().position(|&c| c == '}').map(|p| j + p);
                    let inner: String = chars[j + 1..close.unwrap_or(chars.len())].iter().collect();
                    for part in inner.split(',') {
                        let first: String =
                            part.trim().chars().take_while(|&c| is_ident(c)).collect();
                        if !first.is_empty() {
                            let mut p = segs.clone();
                            p.push(first);
                            if let Some(t) = resolve(&p, module) {
                                found.push(t);
                            }
                        }
                    }
                    segs.clear();
                    j = close.unwrap_or(chars.len());
                    break;
                }
            } else {
                break;
            }
        }
        if let Some(t) = resolve(&segs, module) {
            found.push(t);
        }
        i = j.max(i + 1);
    }
    found
}

/// The top-level module a path lands in, when it starts at `crate`, `super` or `self`.
fn resolve(segs: &[String], module: &[String]) -> Option<String> {
    let first = segs.first()?;
    let mut here: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        // `self` is the file's own module (`a/b.rs` and `a/b/mod.rs` alike are `a::b`).
        "self" => module.to_vec(),
        "super" => module[..module.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    for s in &segs[1..] {
        if s == "super" {
            here.pop();
        } else {
            here.push(s.clone());
            break;
        }
    }
    if segs.len() < 2 || here.is_empty() {
        return None;
    }
    Some(here[0].clone())
}

/// Module path of a file under `src/`: `src/kiosk/runner/worker.rs` is `kiosk::runner::worker`,
/// `src/base/config/mod.rs` is `base::config`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts
}

/// Every violation in a tree of sources: (file, the layer it imported that it must not).
fn violations(files: &[(PathBuf, String)]) -> Vec<(String, String)> {
    let rules: BTreeMap<&str, &[&str]> = RULES.iter().copied().collect();
    let mut out = Vec::new();
    for (rel, text) in files {
        let module = module_of(rel);
        let Some(top) = module.first() else { continue };
        let Some(allowed) = rules.get(top.as_str()) else {
            out.push((rel.display().to_string(), format!("unknown layer {top:?}")));
            continue;
        };
        for t in imported_tops(&code_only(text), &module) {
            if t != *top && !allowed.contains(&t.as_str()) {
                out.push((rel.display().to_string(), t));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn library_sources() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(&src).unwrap().to_path_buf();
            if p.is_dir() {
                if rel != Path::new("bin") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs")
                && rel != Path::new("lib.rs")
                && rel != Path::new("main.rs")
            {
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn no_module_imports_a_layer_it_must_not() {
    let files = library_sources();
    assert!(files.len() > 40, "found only {} source files", files.len());
    let bad = violations(&files);
    assert!(
        bad.is_empty(),
        "imports that break the layers of docs/architecture.md:\n{}",
        bad.iter()
            .map(|(f, t)| format!("  src/{f} imports {t}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_rule() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in code_only(&lib).lines() {
        let line = line.trim();
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
            .and_then(|r| r.strip_suffix(';'))
        {
            assert!(
                RULES.iter().any(|(m, _)| *m == name),
                "src/lib.rs declares {name} but the layering rules do not place it"
            );
        }
    }
}

#[test]
fn the_checker_catches_what_it_must() {
    let f = |path: &str, text: &str| (PathBuf::from(path), text.to_string());
    let files = vec![
        // Upward, through a plain path, a group and a super chain.
        f("base/clock.rs", "use crate::store::Store;"),
        f(
            "vision/detect.rs",
            "use crate::{base::frame::Frame, camera::Camera};",
        ),
        f("store/roster.rs", "fn x() { super::super::sync::go(); }"),
        f("camera/mod.rs", "let v = crate::vision::Vision::load();"),
        // Allowed, or not imports at all.
        f(
            "sync/mod.rs",
            "use crate::store::Store; use crate::base::error::Result;",
        ),
        f(
            "hw/gpio.rs",
            "// crate::kiosk::runner in a comment\nlet s = \"crate::ui::x\";",
        ),
        f(
            "kiosk/runner/worker.rs",
            "use super::super::events::Event; use super::Runner;",
        ),
        f("hub/db.rs", "use crate::store::record::Record;"),
    ];
    let bad = violations(&files);
    let want = vec![
        ("base/clock.rs".to_string(), "store".to_string()),
        ("camera/mod.rs".to_string(), "vision".to_string()),
        ("store/roster.rs".to_string(), "sync".to_string()),
        ("vision/detect.rs".to_string(), "camera".to_string()),
    ];
    assert_eq!(bad, want);
    // The hub reaching into the kiosk or the CLI is refused.
    let hub = vec![f(
        "hub/cli.rs",
        "use crate::kiosk::notify; crate::commands::parse_time(a, b);",
    )];
    assert_eq!(
        violations(&hub),
        vec![
            ("hub/cli.rs".to_string(), "commands".to_string()),
            ("hub/cli.rs".to_string(), "kiosk".to_string())
        ]
    );
}

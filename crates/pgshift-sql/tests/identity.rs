//! Architecture invariant: identity has one home. Qualified names, identifier and literal
//! quoting and the 63-byte limit on names live in `pgshift_sql::ident` and nowhere else in the
//! workspace; a second copy would sooner or later quote, compare or shorten a name
//! differently (there were two `QualifiedName`s, two quoting implementations and three
//! 63-byte clips before).
//!
//! The scan reads every `crates/*/src/**/*.rs` with comments and string literals blanked
//! out, and only the code before a file's first `#[cfg(test)]` (tests may spell out `63`).

use std::fs;
use std::path::{Path, PathBuf};

/// The module that owns identity.
const HOME: &str = "crates/pgshift-sql/src/ident.rs";
/// The byte-offset primitive (`floor_char_boundary`) that `ident::clip` is built on.
const CHAR_BOUNDARY_HOME: &str = "crates/pgshift-sql/src/lines.rs";

#[test]
fn identity_is_defined_only_in_pgshift_sql_ident() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for krate in fs::read_dir(root.join("crates")).expect("crates/") {
        let src = krate.expect("entry").path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("pgshift-sql/src/ident.rs")),
        "the scan did not find {HOME}: is it still the identity module?"
    );
    let mut found = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        let text = fs::read_to_string(file).expect("readable source file");
        for (line, what) in offences(&rel, &text) {
            found.push(format!("{rel}:{line}: {what}"));
        }
    }
    assert!(
        found.is_empty(),
        "identity is implemented outside {HOME}; use pgshift_sql::ident (QualifiedName, \
         quote_ident, quote_literal, display_ident, clip, truncate_identifier, \
         MAX_IDENTIFIER_BYTES) instead:\n  {}",
        found.join("\n  ")
    );
}

/// The detector itself: it must catch each kind of copy, and not fire on prose.
#[test]
fn the_scan_catches_copies_and_ignores_comments_and_strings() {
    let caught = |code: &str| !offences("crates/x/src/a.rs", code).is_empty();
    assert!(caught("pub fn quote_ident(s: &str) -> String { todo!() }"));
    assert!(caught("fn quote_literal(s: &str) -> String { todo!() }"));
    assert!(caught("fn display_ident(s: &str) -> String { todo!() }"));
    assert!(caught("pub struct QualifiedName { name: String }"));
    assert!(caught("const MAX: usize = 63;"));
    assert!(caught("let n = name.len().min(63usize);"));
    assert!(caught("// NAMEDATALEN\nconst NAMEDATALEN: usize = 64;"));
    assert!(caught(
        "fn cut(s: &str, mut n: usize) -> &str { while !s.is_char_boundary(n) { n -= 1 } &s[..n] }"
    ));

    assert!(!caught(
        "// fn quote_ident, NAMEDATALEN - 1 = 63\nfn f() {}"
    ));
    assert!(!caught("/* struct QualifiedName */ fn f() {}"));
    assert!(!caught(
        r#"let m = "truncated to 63 bytes: fn quote_ident";"#
    ));
    assert!(!caught(r##"let m = r#"63 "QualifiedName" 63"#;"##));
    assert!(!caught(
        "let c = '6'; let v = 1.63; let w = 163; let x = 630; fn f<'a>() {}"
    ));
    assert!(!caught(
        "use pgshift_sql::ident::{quote_ident, QualifiedName};"
    ));
    assert!(!caught(
        "fn f() {}\n#[cfg(test)]\nmod tests { const N: usize = 63; }"
    ));
    // The home module may define all of it.
    assert!(offences(HOME, "pub struct QualifiedName; const M: usize = 63;").is_empty());
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (line, what) for every definition of identity in `text` (the file at `rel`).
fn offences(rel: &str, text: &str) -> Vec<(usize, String)> {
    if rel == HOME {
        return Vec::new();
    }
    let code = blank_comments_and_strings(text);
    let code = match code.find("#[cfg(test)]") {
        Some(at) => &code[..at],
        None => &code[..],
    };
    let mut out = Vec::new();
    for (i, line) in code.lines().enumerate() {
        let tokens = tokens(line);
        for pair in tokens.windows(2) {
            let duplicate = match (pair[0], pair[1]) {
                ("fn", name @ ("quote_ident" | "quote_literal" | "display_ident")) => Some(name),
                ("struct" | "enum" | "type", name @ "QualifiedName") => Some(name),
                _ => None,
            };
            if let Some(name) = duplicate {
                out.push((i + 1, format!("a second `{} {name}`", pair[0])));
            }
        }
        for token in &tokens {
            if *token == "NAMEDATALEN" {
                out.push((i + 1, "NAMEDATALEN outside the identity module".to_string()));
            } else if integer_value(token) == Some(63) {
                out.push((
                    i + 1,
                    "the literal 63 (PostgreSQL's identifier limit?): use MAX_IDENTIFIER_BYTES"
                        .to_string(),
                ));
            }
        }
        if line.contains("is_char_boundary") && rel != CHAR_BOUNDARY_HOME {
            out.push((
                i + 1,
                "a hand-written clip (is_char_boundary): use ident::clip or \
                 lines::floor_char_boundary"
                    .to_string(),
            ));
        }
    }
    out
}

/// Identifier and number tokens of a line (a float such as `1.63` is one token).
fn tokens(line: &str) -> Vec<&str> {
    let bytes = line.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !word(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let number = bytes[i].is_ascii_digit();
        while i < bytes.len()
            && (word(bytes[i])
                || (number && bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
        {
            i += 1;
        }
        out.push(&line[start..i]);
    }
    out
}

/// The value of a decimal integer literal (`63`, `6_3`, `63usize`, `63_u8`).
fn integer_value(token: &str) -> Option<u64> {
    if !token.starts_with(|c: char| c.is_ascii_digit()) || token.contains('.') {
        return None;
    }
    let digits: String = token
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '_')
        .filter(|c| *c != '_')
        .collect();
    let suffix = token.trim_start_matches(|c: char| c.is_ascii_digit() || c == '_');
    let plain_suffix = [
        "", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
    ];
    if !plain_suffix.contains(&suffix) {
        return None; // 0x63, 63e2, 63f64 ...
    }
    digits.parse().ok()
}

/// `text` with comments and string/char literals replaced by spaces (newlines kept, so line
/// numbers stay right).
fn blank_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // r"..." / r#"..."# / br"...": ends at a quote followed by as many #.
            let open = i + 1 + usize::from(chars[i] == 'b') + hashes;
            for &ch in &chars[i..=open] {
                blank(&mut out, ch);
            }
            i = open + 1;
            while i < chars.len() {
                let closes =
                    chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#'));
                if closes {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '"' {
            blank(&mut out, c);
            i += 1;
            while i < chars.len() {
                let ch = chars[i];
                if ch == '\\' {
                    blank(&mut out, ch);
                    if let Some(&escaped) = chars.get(i + 1) {
                        blank(&mut out, escaped);
                    }
                    i += 2;
                    continue;
                }
                blank(&mut out, ch);
                i += 1;
                if ch == '"' {
                    break;
                }
            }
        } else if c == '\'' && is_char_literal(&chars, i) {
            blank(&mut out, c);
            i += 1;
            while i < chars.len() {
                let ch = chars[i];
                blank(&mut out, ch);
                i += 1;
                if ch == '\\' {
                    if let Some(&escaped) = chars.get(i) {
                        blank(&mut out, escaped);
                        i += 1;
                    }
                } else if ch == '\'' {
                    break;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The number of `#` when a raw string literal starts at `i`.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && is_word(chars[i - 1]) {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some(hashes)
}

/// Whether the `'` at `i` opens a char literal (`'x'`, `'\n'`, `'\''`) rather than a
/// lifetime or label (`'a`, `'static`).
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some(_) => chars.get(i + 2) == Some(&'\''),
        None => false,
    }
}

//! No test changes the configuration or the state of a server that other tests or programs
//! share: the Postgres of `DATABASE_URL` and the Redis of `REDIS_URL` serve every test
//! binary, two checkouts' suites at once and whatever else runs on the machine.
//!
//! This test reads the crate's test code (every `.rs` file under `tests/`, `benches/` and
//! `examples/`; under `src/`, `src/testing/`, test modules — a `tests` directory or a
//! `tests.rs` / `*_tests.rs` / `proptests.rs` file — and every `#[cfg(test)]` item, the
//! files of `#[cfg(test)] mod x;` included) with a small Rust lexer, and fails on anything
//! that would reconfigure, flush, freeze or kill a server, or end another's session:
//! - a Redis command that changes the server (`CONFIG`, `FLUSHALL`, `FLUSHDB`, `DEBUG`,
//!   `CLIENT`, `SHUTDOWN`, `REPLICAOF`, `ACL`, `SCRIPT`, `FUNCTION`, `MODULE`, …): as the
//!   argument of `cmd(…)` / `arg(…)` in any case, as an uppercase literal, as the start of a
//!   command line (`"CONFIG SET …"`), from Lua (`redis.call('…')`), or through redis-rs's
//!   typed methods (`flushall`, `flushdb`, `acl_setuser`, …);
//! - SQL that reconfigures the server or ends sessions (`ALTER SYSTEM`, `pg_reload_conf`,
//!   `ALTER ROLE` / `DATABASE`, `CREATE` / `DROP ROLE`, `DROP DATABASE`,
//!   `pg_terminate_backend`, `pg_cancel_backend`, `pg_stat_reset`), in any case and
//!   spacing;
//! - signalling or stopping processes: `kill` / `pkill` / `killall`, `pg_ctl`,
//!   `pg_ctlcluster`, `systemctl`, `redis-cli` as a program, and `…::kill` (libc, nix).
//!
//! Comments and prose (`.expect("kill writer")`) are not commands and are not flagged.
//! Read-only subcommands (`CONFIG GET`, `CLIENT LIST`, …) are no change and pass.
//! The one place such commands may be written is the items of `tests/support/` that only
//! ever address a server or sessions the test itself started: the `impl` blocks of a type
//! named `Private…` (a server the test starts on a free loopback port and stops:
//! `PrivateRedis::config_set`, `freeze`, …, `PrivatePostgres`), and the items [`ALLOWED`]
//! names: a private cluster's `Freezer`, the sessions a test opened under an application
//! name of its own (`OwnSessions::terminate`), and signalling by pid (`process::signal`,
//! which is `pub(super)`: a test signals only a `Child` of its own,
//! `process::signal_child`). A test that needs to reconfigure or stop a server starts a
//! private one; a new private server is a `Private…` type in `tests/support/`, not a
//! marker in the test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Items of `tests/support/` (file, `impl` self type or `fn` name) besides the `impl`s of
/// `Private…` types allowed to hold the commands this test forbids: each addresses only a
/// server or session of the test's own.
const ALLOWED: &[(&str, &str)] = &[
    ("tests/support/cluster.rs", "Freezer"),
    ("tests/support/pg.rs", "OwnSessions"),
    ("tests/support/process.rs", "signal"),
];

/// This file, the one not scanned.
const SELF: &str = "tests/shared_servers.rs";

/// Redis commands that change the server itself (configuration, data of every client,
/// clients, persistence, replication, scripts, users).
const REDIS_COMMANDS: &[&str] = &[
    "acl",
    "bgrewriteaof",
    "bgsave",
    "client",
    "config",
    "debug",
    "failover",
    "flushall",
    "flushdb",
    "function",
    "latency",
    "module",
    "replicaof",
    "save",
    "script",
    "shutdown",
    "slaveof",
    "swapdb",
];

/// Subcommands that only read (or name the caller's own connection): `CONFIG GET`,
/// `CLIENT LIST`, … are no change to the server.
const READ_ONLY_SUBCOMMANDS: &[(&str, &str)] = &[
    ("acl", "cat"),
    ("acl", "getuser"),
    ("acl", "list"),
    ("acl", "users"),
    ("acl", "whoami"),
    ("client", "getname"),
    ("client", "id"),
    ("client", "info"),
    ("client", "list"),
    ("client", "setname"),
    ("config", "get"),
    ("function", "list"),
    ("latency", "latest"),
    ("module", "list"),
    ("script", "exists"),
];

/// Commands whose name is no English word: flagged in a literal of any case.
const UNAMBIGUOUS: &[&str] = &[
    "bgrewriteaof",
    "bgsave",
    "flushall",
    "flushdb",
    "replicaof",
    "slaveof",
    "swapdb",
];

/// redis-rs methods that send one of [`REDIS_COMMANDS`].
const REDIS_METHODS: &[&str] = &[
    "acl_deluser",
    "acl_load",
    "acl_log_reset",
    "acl_save",
    "acl_setuser",
    "acl_setuser_rules",
    "flushall",
    "flushall_options",
    "flushall_sync",
    "flushdb",
    "flushdb_options",
];

/// SQL (lowercase, single spaces) that reconfigures the server or ends others' sessions.
const SQL: &[&str] = &[
    "alter database",
    "alter role",
    "alter system",
    "alter user",
    "create role",
    "create user",
    "drop database",
    "drop role",
    "drop user",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_stat_reset",
    "pg_terminate_backend",
];

/// Programs that signal or stop processes or servers.
const PROGRAMS: &[&str] = &[
    "kill",
    "killall",
    "pg_ctl",
    "pg_ctlcluster",
    "pkill",
    "redis-cli",
    "systemctl",
];

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Rust tokens of `src`: identifiers, string literals (plain, raw, byte and C strings, as
/// written between the quotes) and punctuation; comments, whitespace, numbers, characters
/// and lifetimes dropped.
fn lex(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    // A quoted string from `i` (at the opening `"`), raw with `hashes` `#`s or escaped.
    let string = |mut i: usize, raw: Option<usize>, line: &mut usize| -> (String, usize) {
        let start = i + 1;
        i += 1;
        loop {
            let ch = at(i);
            if ch == '\0' {
                return (c[start..].iter().collect(), c.len());
            }
            if ch == '\n' {
                *line += 1;
            }
            match raw {
                None if ch == '\\' => {
                    if at(i + 1) == '\n' {
                        *line += 1;
                    }
                    i += 2;
                    continue;
                }
                None if ch == '"' => return (c[start..i].iter().collect(), i + 1),
                Some(n) if ch == '"' && (1..=n).all(|k| at(i + k) == '#') => {
                    return (c[start..i].iter().collect(), i + 1 + n);
                }
                _ => {}
            }
            i += 1;
        }
    };
    while i < c.len() {
        let ch = c[i];
        let next = at(i + 1);
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            let l = line;
            let (s, end) = string(i, None, &mut line);
            out.push(Token {
                tok: Tok::Str(s),
                line: l,
            });
            i = end;
        } else if ch == '\'' {
            // A character ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == '\\' {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            }
        } else if ch.is_ascii_digit() {
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            // String prefixes: r"…", r#"…"#, b"…", br"…", c"…", cr"…"; byte b'x'.
            let raw = matches!(word.as_str(), "r" | "br" | "cr");
            if raw && (at(i) == '"' || (at(i) == '#' && (at(i + 1) == '"' || at(i + 1) == '#'))) {
                let mut hashes = 0;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                let l = line;
                let (s, end) = string(i, Some(hashes), &mut line);
                out.push(Token {
                    tok: Tok::Str(s),
                    line: l,
                });
                i = end;
            } else if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                let l = line;
                let (s, end) = string(i, None, &mut line);
                out.push(Token {
                    tok: Tok::Str(s),
                    line: l,
                });
                i = end;
            } else if word == "b" && at(i) == '\'' {
                i += 1;
                while i < c.len() && c[i] != '\'' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            } else if word == "r" && at(i) == '#' {
                // A raw identifier: r#name.
                i += 1;
            } else {
                out.push(Token {
                    tok: Tok::Ident(word),
                    line,
                });
            }
        } else {
            out.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    out
}

fn is_punct(t: Option<&Token>, ch: char) -> bool {
    matches!(t, Some(Token { tok: Tok::Punct(p), .. }) if *p == ch)
}

fn is_ident(t: Option<&Token>, name: &str) -> bool {
    matches!(t, Some(Token { tok: Tok::Ident(w), .. }) if w == name)
}

/// The index just past the bracketed group opening at `open` (`(`, `[`, `{` or `<`).
fn close(tokens: &[Token], open: usize) -> usize {
    let (o, cl) = match tokens[open].tok {
        Tok::Punct('(') => ('(', ')'),
        Tok::Punct('[') => ('[', ']'),
        Tok::Punct('<') => ('<', '>'),
        _ => ('{', '}'),
    };
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct(p) if p == o => depth += 1,
            // `->` inside generics is no closing bracket.
            Tok::Punct(p) if p == cl && !(cl == '>' && is_punct(tokens.get(k - 1), '-')) => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// The end (exclusive) of the item starting at `from`: its `;` or its `{…}` block at depth 0.
fn item_end(tokens: &[Token], from: usize) -> usize {
    let mut k = from;
    while k < tokens.len() {
        match tokens[k].tok {
            Tok::Punct(';') => return k + 1,
            Tok::Punct('{') => return close(tokens, k),
            Tok::Punct('(') | Tok::Punct('[') => k = close(tokens, k),
            _ => k += 1,
        }
    }
    tokens.len()
}

/// A `#[cfg(…)]` attribute at `k` that holds for tests (`test` not under `not(…)`): the
/// index past it.
fn cfg_test_at(tokens: &[Token], k: usize) -> Option<usize> {
    if !(is_punct(tokens.get(k), '#')
        && is_punct(tokens.get(k + 1), '[')
        && is_ident(tokens.get(k + 2), "cfg"))
    {
        return None;
    }
    let end = close(tokens, k + 1);
    let test = (k + 3..end).any(|j| {
        is_ident(tokens.get(j), "test")
            && !(is_punct(tokens.get(j - 1), '(') && is_ident(tokens.get(j - 2), "not"))
    });
    test.then_some(end)
}

/// The file(s) `mod name;` at `m` may be in, with `path` its `#[path = "…"]` if any:
/// `mod_dir` is where the file's own modules live, `file_dir` its directory.
fn module_files(name: &str, path: Option<&str>, mod_dir: &Path, file_dir: &Path) -> Vec<PathBuf> {
    match path {
        Some(p) => vec![file_dir.join(p)],
        None => vec![
            mod_dir.join(format!("{name}.rs")),
            mod_dir.join(name).join("mod.rs"),
        ],
    }
}

/// The `#[path = "…"]` among the attributes from `j`, and the index past them.
fn attributes(tokens: &[Token], mut j: usize) -> (Option<String>, usize) {
    let mut path = None;
    while is_punct(tokens.get(j), '#') && is_punct(tokens.get(j + 1), '[') {
        let end = close(tokens, j + 1);
        if is_ident(tokens.get(j + 2), "path")
            && let Some(Token {
                tok: Tok::Str(p), ..
            }) = tokens.get(j + 4)
        {
            path = Some(p.clone());
        }
        j = end;
    }
    (path, j)
}

/// The name of a `[pub[(…)]] mod name;` item in `tokens[from..end]`, if it is one.
fn mod_decl(tokens: &[Token], from: usize, end: usize) -> Option<String> {
    let m = (from..end).find(|&m| is_ident(tokens.get(m), "mod"))?;
    let Some(Token {
        tok: Tok::Ident(name),
        ..
    }) = tokens.get(m + 1)
    else {
        return None;
    };
    (m + 3 == end && is_punct(tokens.get(m + 2), ';')).then(|| name.clone())
}

/// The token ranges of `#[cfg(test)]` items, and the files of `#[cfg(test)] mod x;`.
fn cfg_test_items(
    tokens: &[Token],
    mod_dir: &Path,
    file_dir: &Path,
) -> (Vec<(usize, usize)>, Vec<PathBuf>) {
    let (mut ranges, mut files) = (Vec::new(), Vec::new());
    let mut k = 0;
    while k < tokens.len() {
        let Some(j) = cfg_test_at(tokens, k) else {
            k += 1;
            continue;
        };
        let (path, j) = attributes(tokens, j);
        let end = item_end(tokens, j);
        ranges.push((k, end));
        if let Some(name) = mod_decl(tokens, j, end) {
            files.extend(module_files(&name, path.as_deref(), mod_dir, file_dir));
        }
        k = end;
    }
    (ranges, files)
}

/// The files of every `mod x;` of a file that is test code as a whole.
fn all_mod_files(tokens: &[Token], mod_dir: &Path, file_dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut k = 0;
    while k < tokens.len() {
        if is_punct(tokens.get(k), '#') && is_punct(tokens.get(k + 1), '[') {
            let (path, j) = attributes(tokens, k);
            let end = item_end(tokens, j);
            if let Some(name) = mod_decl(tokens, j, end) {
                files.extend(module_files(&name, path.as_deref(), mod_dir, file_dir));
            }
            k = j;
        } else if is_ident(tokens.get(k), "mod")
            && let Some(name) = mod_decl(tokens, k, k + 3)
        {
            files.extend(module_files(&name, None, mod_dir, file_dir));
            k += 3;
        } else {
            k += 1;
        }
    }
    files
}

/// The token ranges of the items of `rel` (a file of `tests/support/`) that may send the
/// commands: `impl [<…>] [Trait for] Type` blocks of a type named `Private…` (a server the
/// test starts itself), and the `impl` blocks and `fn` items that [`ALLOWED`] names.
fn allowed_items(rel: &str, tokens: &[Token]) -> Vec<(usize, usize)> {
    let names: Vec<&str> = ALLOWED
        .iter()
        .filter(|(file, _)| *file == rel)
        .map(|(_, name)| *name)
        .collect();
    let mut ranges = Vec::new();
    for (k, t) in tokens.iter().enumerate() {
        let Tok::Ident(word) = &t.tok else { continue };
        if word == "fn" {
            if let Some(Token {
                tok: Tok::Ident(name),
                ..
            }) = tokens.get(k + 1)
                && names.contains(&name.as_str())
            {
                ranges.push((k, item_end(tokens, k)));
            }
        } else if word == "impl" {
            let end = item_end(tokens, k);
            let mut j = k + 1;
            if is_punct(tokens.get(j), '<') {
                j = close(tokens, j);
            }
            // The self type: after `for` if this is a trait impl, else the first path.
            let header_end = (j..end)
                .find(|&m| is_punct(tokens.get(m), '{'))
                .unwrap_or(end);
            if let Some(f) = (j..header_end).find(|&m| is_ident(tokens.get(m), "for")) {
                j = f + 1;
            }
            if let Some(Token {
                tok: Tok::Ident(name),
                ..
            }) = tokens.get(j)
                && (names.contains(&name.as_str()) || name.starts_with("Private"))
            {
                ranges.push((k, end));
            }
        }
    }
    ranges
}

/// The string literal of a `.arg("…")` right after the call holding the literal at `k`.
fn next_arg(tokens: &[Token], k: usize) -> Option<&str> {
    let at = |n: usize| tokens.get(k + n);
    if is_punct(at(1), ')')
        && is_punct(at(2), '.')
        && is_ident(at(3), "arg")
        && is_punct(at(4), '(')
        && let Some(Token {
            tok: Tok::Str(s), ..
        }) = at(5)
    {
        return Some(s);
    }
    None
}

/// Whether the string literal at `k` is an argument of `cmd(…)`, `arg(…)` or `args([…])`:
/// a Redis command word there is one in any case.
fn command_position(tokens: &[Token], k: usize) -> bool {
    let before = |n: usize| k.checked_sub(n).and_then(|j| tokens.get(j));
    (is_punct(before(1), '(')
        && (is_ident(before(2), "cmd") || is_ident(before(2), "arg") || is_ident(before(2), "new")))
        || (is_punct(before(1), '[') && is_punct(before(2), '(') && is_ident(before(3), "args"))
}

/// Why a string literal is a forbidden command, if it is one.
fn literal_finding(s: &str, command_position: bool, next_arg: Option<&str>) -> Option<String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    let flat = words.join(" ").to_lowercase();
    if let Some(first) = words.first() {
        let lower = first.to_lowercase();
        // The subcommand: the literal's second word, or the next `.arg("…")`.
        let sub = words
            .get(1)
            .copied()
            .or(next_arg.filter(|_| words.len() == 1))
            .map(str::to_lowercase);
        let read_only = sub
            .as_deref()
            .is_some_and(|sub| READ_ONLY_SUBCOMMANDS.contains(&(lower.as_str(), sub)));
        if REDIS_COMMANDS.contains(&lower.as_str()) && !read_only {
            let exact = words.len() == 1;
            let uppercase = *first == lower.to_uppercase();
            // `"CONFIG SET …"`, `"CLIENT PAUSE …"`: an uppercase subcommand follows.
            let command_line = words.get(1).is_some_and(|w| {
                w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase() || c == '-')
            });
            if (exact && (command_position || uppercase || UNAMBIGUOUS.contains(&lower.as_str())))
                || (uppercase && command_line)
            {
                return Some(format!("the Redis command {}", first.to_uppercase()));
            }
        }
        let program = PROGRAMS.iter().find(|p| {
            lower == **p
                && (words.len() == 1
                    || words.get(1).is_some_and(|w| {
                        w.starts_with(['-', '$'])
                            || w.chars().all(|c| c.is_ascii_digit())
                            || **p != "kill"
                    }))
        });
        if let Some(p) = program {
            return Some(format!("the program `{p}`"));
        }
    }
    // Lua: redis.call('CONFIG', …) / redis.pcall("FLUSHALL").
    for (at, _) in flat.match_indices("call(") {
        let rest = flat[at + 5..].trim_start_matches([' ', '\'', '"', '\\']);
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if REDIS_COMMANDS.contains(&name.as_str()) {
            return Some(format!(
                "the Redis command {} from Lua",
                name.to_uppercase()
            ));
        }
    }
    for word in UNAMBIGUOUS {
        if flat
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == *word)
        {
            return Some(format!("the Redis command {}", word.to_uppercase()));
        }
    }
    SQL.iter()
        .find(|sql| flat.contains(**sql))
        .map(|sql| format!("the SQL `{}`", sql.to_uppercase()))
}

/// One forbidden command found: where and what.
#[derive(Debug, PartialEq)]
struct Finding {
    file: String,
    line: usize,
    what: String,
}

/// The forbidden commands in `tokens[from..to]` of `rel` outside `allowed` ranges.
fn scan_tokens(
    rel: &str,
    tokens: &[Token],
    ranges: &[(usize, usize)],
    allowed: &[(usize, usize)],
    seen_allowed: &mut usize,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for &(from, to) in ranges {
        for k in from..to.min(tokens.len()) {
            let what = match &tokens[k].tok {
                Tok::Str(s) => literal_finding(s, command_position(tokens, k), next_arg(tokens, k)),
                Tok::Ident(w) if REDIS_METHODS.contains(&w.as_str()) => {
                    let called = is_punct(tokens.get(k.wrapping_sub(1)), '.')
                        || is_punct(tokens.get(k.wrapping_sub(1)), ':');
                    called.then(|| format!("the redis-rs method `{w}`"))
                }
                Tok::Ident(w) if w == "kill" || w == "killpg" => {
                    // `libc::kill`, `nix::sys::signal::kill`; `child.kill()` is a child's own.
                    is_punct(tokens.get(k.wrapping_sub(1)), ':')
                        .then(|| format!("`::{w}` (a signal by pid)"))
                }
                _ => None,
            };
            let Some(what) = what else { continue };
            if allowed.iter().any(|&(a, b)| (a..b).contains(&k)) {
                *seen_allowed += 1;
            } else {
                out.push(Finding {
                    file: rel.to_owned(),
                    line: tokens[k].line,
                    what,
                });
            }
        }
    }
    out
}

/// Whether a file under `src/` is test code as a whole, by its path.
fn src_test_file(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    rel.starts_with("src/testing/")
        || rel.split('/').any(|c| c == "tests")
        || name == "tests.rs"
        || name == "proptests.rs"
        || name.ends_with("_tests.rs")
}

/// Scans one file (path relative to the crate root) given its text and whether it is test
/// code as a whole; returns the findings and the files of the test modules it declares.
fn scan_file(
    rel: &str,
    text: &str,
    whole: bool,
    seen_allowed: &mut usize,
) -> (Vec<Finding>, Vec<PathBuf>) {
    let tokens = lex(text);
    let path = Path::new(rel);
    let file_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mod_dir = match path.file_name().and_then(|n| n.to_str()) {
        Some("mod.rs" | "lib.rs" | "main.rs") => file_dir.clone(),
        _ => path.with_extension(""),
    };
    let (items, mut files) = cfg_test_items(&tokens, &mod_dir, &file_dir);
    let ranges = if whole {
        files = all_mod_files(&tokens, &mod_dir, &file_dir);
        vec![(0, tokens.len())]
    } else {
        items
    };
    let allowed = if rel.starts_with("tests/support/") {
        allowed_items(rel, &tokens)
    } else {
        Vec::new()
    };
    (
        scan_tokens(rel, &tokens, &ranges, &allowed, seen_allowed),
        files,
    )
}

fn rust_files(root: &Path, dir: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = format!("{dir}/{name}");
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() && name != "node_modules" && name != "target" {
            rust_files(root, &rel, out);
        } else if kind.is_file() && name.ends_with(".rs") {
            out.push(rel);
        }
    }
}

/// Scans the crate at `root`: the findings, how many files were read as test code, and how
/// many commands were found inside [`ALLOWED`] items.
fn scan_crate(root: &Path) -> (Vec<Finding>, usize, usize) {
    let mut files = Vec::new();
    for dir in ["tests", "benches", "examples", "src"] {
        rust_files(root, dir, &mut files);
    }
    // This file names the commands it looks for; it sends none.
    files.retain(|rel| rel != SELF);
    files.sort();
    let (mut findings, mut seen_allowed) = (Vec::new(), 0);
    let mut whole: BTreeSet<String> = files
        .iter()
        .filter(|rel| !rel.starts_with("src/") || src_test_file(rel))
        .cloned()
        .collect();
    // Library files: only their `#[cfg(test)]` items, and the test modules they declare.
    let mut queue: Vec<String> = Vec::new();
    for rel in files.iter().filter(|rel| !whole.contains(*rel)) {
        let text = std::fs::read_to_string(root.join(rel)).expect("read a source file");
        let (found, mods) = scan_file(rel, &text, false, &mut seen_allowed);
        findings.extend(found);
        queue.extend(mods.iter().map(|p| p.to_string_lossy().into_owned()));
    }
    // Then every test file, and the modules test files declare (transitively).
    queue.extend(whole.iter().cloned());
    let mut done: BTreeSet<String> = BTreeSet::new();
    while let Some(rel) = queue.pop() {
        if !files.contains(&rel) || !done.insert(rel.clone()) {
            continue;
        }
        whole.insert(rel.clone());
        let text = std::fs::read_to_string(root.join(&rel)).expect("read a source file");
        let (found, mods) = scan_file(&rel, &text, true, &mut seen_allowed);
        findings.extend(found);
        queue.extend(mods.iter().map(|p| p.to_string_lossy().into_owned()));
    }
    findings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    findings.dedup();
    (findings, done.len(), seen_allowed)
}

#[test]
fn no_test_reconfigures_flushes_freezes_or_kills_a_shared_server() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (findings, test_files, seen_allowed) = scan_crate(root);
    let report: Vec<String> = findings
        .iter()
        .map(|f| format!("  {}:{}: {}", f.file, f.line, f.what))
        .collect();
    assert!(
        findings.is_empty(),
        "test code sends commands that change a server other tests share:\n{}\n\
         Reconfigure, flush, freeze or stop only a server of the test's own (an `impl` \
         of a `Private…` type in tests/support: PrivateRedis, PrivatePostgres), and \
         terminate only sessions opened under support::pg::OwnSessions \
         (see tests/shared_servers.rs)",
        report.join("\n")
    );
    // Not vacuous: the test code was found, and so were the private servers' own commands.
    assert!(test_files > 50, "only {test_files} test files found");
    assert!(
        seen_allowed >= 4,
        "the private-server helpers' commands were not seen ({seen_allowed})"
    );
}

/// Runs the scan on one file's text.
fn scan(rel: &str, text: &str) -> Vec<String> {
    let whole = !rel.starts_with("src/") || src_test_file(rel);
    scan_file(rel, text, whole, &mut 0)
        .0
        .into_iter()
        .map(|f| format!("{}: {}", f.line, f.what))
        .collect()
}

#[test]
fn the_scan_finds_each_way_of_sending_a_forbidden_command() {
    let cases = [
        r#"redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("1mb")"#,
        r#"redis::cmd("config").arg("set")"#,
        r#"pipe.cmd("FlushAll")"#,
        r#"redis::Cmd::new().arg("debug").arg("sleep")"#,
        r#"let c = "CONFIG SET min-replicas-to-write 1";"#,
        r#"const X: &str = "CLIENT PAUSE 1000";"#,
        r#"conn.flushall().await"#,
        r#"redis::AsyncCommands::flushdb(&mut conn)"#,
        r#"redis::Script::new("return redis.call('FLUSHDB')")"#,
        r#"redis::Script::new("redis.pcall(\"config\", 'set', 'x', 1)")"#,
        r#"sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity")"#,
        "sqlx::query(r#\"ALTER\n   SYSTEM SET work_mem = '1MB'\"#)",
        r#"conn.execute("select PG_RELOAD_CONF()")"#,
        r#"conn.execute("ALTER ROLE postgres SET statement_timeout = 1")"#,
        r#"Command::new("kill").args(["-STOP", &pid])"#,
        r#"Command::new("sh").args(["-c", "kill -9 $(cat /run/redis.pid)"])"#,
        r#"Command::new("pg_ctlcluster").args(["17", "main", "stop"])"#,
        r#"Command::new("redis-cli").arg("shutdown")"#,
        r#"unsafe { libc::kill(pid, libc::SIGSTOP) }"#,
        r#"nix::sys::signal::kill(pid, Signal::SIGSTOP)"#,
    ];
    for case in cases {
        let found = scan("tests/redis/x.rs", case);
        assert!(!found.is_empty(), "not found: {case}");
    }
}

#[test]
fn read_only_subcommands_pass() {
    let text = r#"
        redis::cmd("CONFIG").arg("GET").arg("maxmemory");
        redis::cmd("CLIENT").arg("SETNAME").arg("me");
        let q = "CLIENT LIST";
        redis::cmd("CONFIG").arg("RESETSTAT");
        redis::cmd("CLIENT").arg(kind);
    "#;
    assert_eq!(
        scan("tests/redis/x.rs", text),
        vec!["5: the Redis command CONFIG", "6: the Redis command CLIENT"]
    );
}

#[test]
fn the_scan_leaves_prose_comments_and_own_children_alone() {
    let text = r##"
        // Never CONFIG SET or FLUSHALL the shared server; kill -STOP only a private one.
        /* redis::cmd("FLUSHALL") in a block comment /* nested */ still a comment */
        fn f(mut child: Child) {
            child.kill().expect("kill writer");
            socket.shutdown().await;
            let s = format!("{:?}", x.field("config", &y));
            tracing::debug!("debug build, the cluster config is fine");
            let lifetime: &'static str = "the writer was killed";
            let c = '"'; let d = b'"'; let e = r#"a "quoted" SELECT 1"#;
            assert!(text.contains("save"), "{}", "client");
        }
    "##;
    assert_eq!(scan("tests/x/y.rs", text), Vec::<String>::new());
}

#[test]
fn only_the_private_server_items_of_support_may_send_them() {
    let text = r#"
        impl PrivateRedis {
            pub async fn config_set(&self) { redis::cmd("CONFIG").arg("SET"); }
        }
        impl Drop for PrivatePostgres {
            fn drop(&mut self) { Command::new("kill").args(["-QUIT"]); }
        }
        impl SomethingElse {
            fn f() { redis::cmd("FLUSHALL"); }
        }
        fn g() { Command::new("kill"); }
    "#;
    // In support, the private servers' commands pass; the others' do not.
    let support = scan("tests/support/redis.rs", text);
    assert_eq!(
        support,
        vec!["9: the Redis command FLUSHALL", "11: the program `kill`"]
    );
    // The same items outside support are no private servers.
    assert_eq!(scan("tests/redis/fake.rs", text).len(), 4);
    // Any `Private…` type of support is one (a server the test starts), in any file there.
    let cluster = "impl PrivateRedisCluster { fn f() { redis::cmd(\"CLUSTER\").arg(\"RESET\"); redis::cmd(\"FLUSHALL\"); } }";
    assert_eq!(
        scan("tests/support/redis_cluster.rs", cluster),
        Vec::<String>::new()
    );
    assert_eq!(scan("tests/redis/cluster.rs", cluster).len(), 1);
}

#[test]
fn in_src_only_test_code_is_scanned() {
    let text = r#"
        pub async fn cancel() { query("SELECT pg_cancel_backend(pid)"); }
        #[cfg(test)]
        mod tests {
            fn t() { redis::cmd("FLUSHDB"); }
        }
        #[cfg(all(test, feature = "redis"))]
        fn u() { redis::cmd("DEBUG").arg("SLEEP"); }
        #[cfg(not(test))]
        fn v() { redis::cmd("SHUTDOWN"); }
    "#;
    assert_eq!(
        scan("src/cache/x.rs", text),
        vec!["5: the Redis command FLUSHDB", "8: the Redis command DEBUG"]
    );
    assert_eq!(scan("src/cache/x/tests.rs", text).len(), 4);
    assert_eq!(scan("src/testing/harness/mod.rs", text).len(), 4);
    // `#[cfg(test)] mod x;` declares a test file.
    let (_, files) = scan_file(
        "src/watcher/mod.rs",
        "#[cfg(test)]\nmod recent_tests;\n#[cfg(test)]\n#[path = \"t/x.rs\"]\nmod y;",
        false,
        &mut 0,
    );
    assert_eq!(
        files,
        vec![
            PathBuf::from("src/watcher/recent_tests.rs"),
            PathBuf::from("src/watcher/recent_tests/mod.rs"),
            PathBuf::from("src/watcher/t/x.rs"),
        ]
    );
}

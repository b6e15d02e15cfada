//! The docs cannot drift from the code (issue #25): every name in `README.md`,
//! `docs/*.md` and the examples' headers is checked against what it names.
//!
//! - **Rust paths** (`FinalityTag::Depth`, `store::ComposedStore`, in code spans and in
//!   non-shell code blocks): each module segment is a module of the crate, each type has
//!   the member named after it (variant, field, method, constant), each name is an item.
//! - **Commands** (code spans starting with `cargo` or `reorg-collateral`, and every line of
//!   `sh` blocks): the target (`--example`, `--bin`, `--test`, `--bench`) exists and the
//!   features given enable its required features; an example that follows a node is run
//!   with `--release` (a debug build is several times slower on a real chain, issue #23);
//!   the CLI's subcommands and flags are in its `--help`; every `NAME=value` is read by
//!   the code (a `"NAME"` literal).
//! - **Other names**: `CONSTANT_CASE` names (environment variables, constants) and
//!   `snake_case` ones (tests, tables, columns, methods) occur in the code; file paths
//!   and relative links exist.

mod index;
mod markdown;

use std::path::Path;
use std::sync::OnceLock;

use index::{Cli, Crate, Manifest, ROOT, Words};
use markdown::{is_constant_case, is_ident, markdown, paths, shell_commands};

/// Everything the checks compare with.
struct Code {
    krate: Crate,
    words: Words,
    manifest: Manifest,
    cli: Cli,
    /// Crates a path may start with that are not this one (std and the dependencies).
    external: Vec<String>,
}

impl Code {
    fn read() -> Self {
        let manifest_text =
            std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).expect("Cargo.toml");
        let mut external: Vec<String> = ["std", "core", "alloc"].map(String::from).to_vec();
        let mut in_deps = false;
        for line in manifest_text.lines() {
            if line.starts_with('[') {
                in_deps = line.contains("dependencies");
            } else if in_deps && let Some((name, _)) = line.split_once('=') {
                external.push(name.trim().replace('-', "_"));
            }
        }
        Code {
            krate: Crate::read(),
            words: Words::read(),
            manifest: Manifest::read(),
            cli: Cli::read(),
            external,
        }
    }

    fn check_path(&self, segments: &[String], problems: &mut Vec<String>) {
        let mut segments = segments;
        if segments[0] == "reorg_collateral" || segments[0] == "crate" {
            segments = &segments[1..];
        } else if self.external.contains(&segments[0]) {
            return; // another crate's path
        }
        let path = segments.join("::");
        for (i, s) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            if s.starts_with(|c: char| c.is_uppercase()) && !is_constant_case(s) {
                if !self.krate.items.contains(s) {
                    // Another crate's type the code uses (`U256`, `Decimal`): its members
                    // are that crate's business.
                    if !self.words.words.contains(s) {
                        problems.push(format!("`{path}`: no item `{s}` in the crate"));
                    }
                    return;
                }
                if let Some(member) = segments.get(i + 1)
                    && !self.krate.has_member(s, member)
                {
                    problems.push(format!("`{path}`: `{s}` has no `{member}`"));
                }
                return;
            }
            let known = if last {
                self.krate.items.contains(s) || self.krate.modules.contains(s)
            } else {
                self.krate.modules.contains(s)
            };
            if !known {
                problems.push(format!("`{path}`: no module or item `{s}` in the crate"));
                return;
            }
        }
    }

    fn check_span(&self, span: &str, problems: &mut Vec<String>) {
        if span.starts_with("cargo ") || span.starts_with("reorg-collateral") {
            self.check_command(span, problems);
        }
        for p in paths(span) {
            self.check_path(&p, problems);
        }
        let words = span.split(|c: char| !(c.is_alphanumeric() || c == '_'));
        for word in words.filter(|w| !w.is_empty()) {
            let named = is_constant_case(word)
                || (is_ident(word) && word.contains('_') && word == word.to_lowercase());
            if named && !self.words.words.contains(word) {
                problems.push(format!("`{span}`: `{word}` does not occur in the code"));
            }
        }
        // A lone name: `subscribe()`, `CollateralReader` (not an all-caps keyword of SQL or
        // Redis: `OFFSET`, `FLUSHDB`).
        let bare = span.strip_suffix("()").unwrap_or(span);
        let camel = bare.starts_with(char::is_uppercase) && bare.contains(char::is_lowercase);
        let lone = is_ident(bare) && (bare.len() < span.len() || camel);
        if lone && !self.words.words.contains(bare) {
            problems.push(format!("`{span}`: no `{bare}` in the code"));
        }
        // (A span starting with `/` is an HTTP route, `/health`, not a file of the repo; one
        // starting with `@` is an npm package, `@openzeppelin/contracts`, or a file in one.)
        let path_like = !span.contains(['<', '{', '…', ' ', '*', '|'])
            && !span.starts_with('/')
            && !span.starts_with('@')
            && !span.contains("://")
            && !span.contains("NNNN")
            && (span.contains('/')
                || [".rs", ".md", ".toml", ".sql"]
                    .iter()
                    .any(|e| span.ends_with(e)));
        if path_like && !file_exists(span) {
            problems.push(format!("`{span}`: no such file or directory"));
        }
    }

    fn check_command(&self, command: &str, problems: &mut Vec<String>) {
        let words: Vec<&str> = command
            .split_whitespace()
            .map(|w| w.trim_matches(['(', ')', '[', ']']))
            .filter(|w| !w.is_empty())
            .collect();
        let mut i = 0;
        let mut unread = Vec::new();
        while let Some((name, value)) = words.get(i).and_then(|w| w.split_once('=')) {
            if value.starts_with("$(") {
                // `NAME=$(…)`: a shell variable set from a command's output.
                return;
            }
            if is_ident(name) && !self.words.literals.contains(name) {
                unread.push(name);
            }
            i += 1;
        }
        // `NAME=value command`: the command's environment, which the code must read; a line
        // of assignments alone sets shell variables for the lines after it.
        if i < words.len() {
            for name in unread {
                problems.push(format!("`{command}`: the code reads no `{name}`"));
            }
        }
        match words.get(i) {
            Some(&"cargo") => self.check_cargo(command, &words[i + 1..], problems),
            Some(&"reorg-collateral") => self.check_cli(command, &words[i + 1..], problems),
            _ => {}
        }
    }

    fn check_cargo(&self, command: &str, args: &[&str], problems: &mut Vec<String>) {
        let value = |flag: &str| {
            args.iter()
                .position(|a| *a == flag)
                .and_then(|i| args.get(i + 1))
                .copied()
        };
        let features: Vec<String> = value("--features")
            .or(value("-F"))
            .map(|f| f.split(',').map(String::from).collect())
            .unwrap_or_default();
        for f in &features {
            if !self.manifest.is_feature(f) {
                problems.push(format!("`{command}`: no feature `{f}`"));
            }
        }
        let enabled = self.manifest.closure(&features);
        let all = args.contains(&"--all-features");
        for kind in ["example", "bin", "test", "bench"] {
            let Some(name) = value(&format!("--{kind}")) else {
                continue;
            };
            let Some(required) = self
                .manifest
                .targets
                .get(&(kind.to_owned(), name.to_owned()))
            else {
                problems.push(format!("`{command}`: no {kind} `{name}`"));
                continue;
            };
            let missing: Vec<_> = required.iter().filter(|f| !enabled.contains(*f)).collect();
            if !all && !missing.is_empty() {
                problems.push(format!(
                    "`{command}`: {kind} `{name}` needs features {missing:?}"
                ));
            }
            let source = Path::new(ROOT).join("examples").join(format!("{name}.rs"));
            let follows_a_node = kind == "example"
                && std::fs::read_to_string(source).is_ok_and(|s| s.contains("\"RPC_URLS\""));
            if follows_a_node && !args.contains(&"--release") {
                problems.push(format!(
                    "`{command}`: follows a node, so document it with --release"
                ));
            }
        }
        if value("--bin") == Some("reorg-collateral")
            && let Some(dashes) = args.iter().position(|a| *a == "--")
        {
            self.check_cli(command, &args[dashes + 1..], problems);
        }
    }

    fn check_cli(&self, command: &str, args: &[&str], problems: &mut Vec<String>) {
        let mut flags = &self.cli.global;
        let mut i = 0;
        let mut subcommand = None;
        while let Some(arg) = args.get(i) {
            i += 1;
            if arg.starts_with("--") {
                let flag = arg.split('=').next().unwrap_or(arg);
                let takes_value = flags
                    .get(flag)
                    .or_else(|| self.cli.global.get(flag))
                    .copied();
                match takes_value {
                    Some(true) if !arg.contains('=') => i += 1,
                    Some(_) => {}
                    None => problems.push(format!(
                        "`{command}`: `{flag}` is not a flag of reorg-collateral {}",
                        subcommand.unwrap_or("")
                    )),
                }
            } else if subcommand.is_none() && is_ident(&arg.replace('-', "_")) {
                match self.cli.subcommands.get(*arg) {
                    Some(sub) => {
                        flags = sub;
                        subcommand = Some(*arg);
                    }
                    None => problems.push(format!(
                        "`{command}`: `{arg}` is not a subcommand of reorg-collateral"
                    )),
                }
            }
        }
    }
}

fn file_exists(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    let root = Path::new(ROOT);
    if root.join(path).exists() || root.join("src").join(path).exists() {
        return true;
    }
    // A path relative to a folder the text names (`main.rs` of a test binary, `build/` of
    // the chain project): the end of some path of the repository.
    static ALL: OnceLock<Vec<String>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = Vec::new();
        for f in index::files(root, &[""]) {
            for a in f.ancestors().take_while(|a| a.starts_with(root)) {
                all.push(a.to_string_lossy().into_owned());
            }
        }
        all.sort();
        all.dedup();
        all
    })
    .iter()
    .any(|f| f.ends_with(&format!("/{path}")))
}

fn problems_of(code: &Code, file: &str, text: &str) -> Vec<String> {
    let md = markdown(text);
    let mut problems = Vec::new();
    for span in &md.spans {
        code.check_span(span, &mut problems);
    }
    for (lang, block) in &md.blocks {
        if matches!(lang.as_str(), "sh" | "bash" | "console" | "shell") {
            for command in shell_commands(block) {
                code.check_command(&command, &mut problems);
            }
        } else {
            for p in paths(block) {
                code.check_path(&p, &mut problems);
            }
        }
    }
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    for link in &md.links {
        let target = link.split('#').next().unwrap_or("");
        if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        if !Path::new(ROOT).join(dir).join(target).exists() {
            problems.push(format!("link ({link}): no such file"));
        }
    }
    problems
        .into_iter()
        .map(|p| format!("{file}: {p}"))
        .collect()
}

/// `README.md` and `docs/**/*.md`, except `docs/design/`: a design names the API it proposes,
/// which does not exist until it lands.
fn doc_files() -> Vec<String> {
    let mut out = vec!["README.md".to_owned()];
    let design = Path::new(ROOT).join("docs").join("design");
    for f in index::files(&Path::new(ROOT).join("docs"), &[".md"]) {
        if f.starts_with(&design) {
            continue;
        }
        let rel = f.strip_prefix(ROOT).expect("under the root");
        out.push(rel.to_string_lossy().into_owned());
    }
    out
}

/// The module docs (`//!`) of each example: the header a user copies the command from.
fn example_headers() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in index::files(&Path::new(ROOT).join("examples"), &[".rs"]) {
        let text = std::fs::read_to_string(&f).expect("read an example");
        let header: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("//!"))
            .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
            .collect();
        let rel = f.strip_prefix(ROOT).expect("under the root");
        out.push((rel.to_string_lossy().into_owned(), header));
    }
    out
}

#[test]
fn every_name_and_command_in_the_docs_exists() {
    let code = Code::read();
    let mut problems = Vec::new();
    let files = doc_files();
    assert!(files.len() > 3, "docs/ not found: {files:?}");
    for file in &files {
        let text = std::fs::read_to_string(Path::new(ROOT).join(file)).expect("read a doc");
        problems.extend(problems_of(&code, file, &text));
    }
    let examples = example_headers();
    assert!(examples.iter().any(|(f, _)| f.ends_with("rpc_watch.rs")));
    for (file, header) in &examples {
        problems.extend(problems_of(&code, file, header));
    }
    assert!(
        problems.is_empty(),
        "the docs drifted:\n{}",
        problems.join("\n")
    );
}

/// The checker itself: the drift of issue #25 (and its like) is caught, the current
/// names pass.
#[test]
fn the_checker_catches_drifted_names_and_commands() {
    let code = Code::read();
    let drifted = "Use `FinalityTag::None` on dev chains; `RpcBlockSource::httpx` too.\n\
        Run `cargo run --example rpc_watch --features rpc` or `cargo run --example nope`.\n\
        See `tests/rpc/nodes.rs`, `NO_SUCH_VARIABLE`, `no_such_test_name` and [x](missing.md).\n\
        ```sh\n\
        RPC_URL=http://127.0.0.1:8545 cargo run --release --example rpc_watch --features postgres\n\
        reorg-collateral verify --no-such-flag\n\
        reorg-collateral frobnicate\n\
        ```\n";
    let problems = problems_of(&code, "docs/x.md", drifted).join("\n");
    for expected in [
        "`FinalityTag` has no `None`",
        "`RpcBlockSource` has no `httpx`",
        "follows a node, so document it with --release",
        "no example `nope`",
        "`tests/rpc/nodes.rs`: no such file",
        "`NO_SUCH_VARIABLE` does not occur",
        "`no_such_test_name` does not occur",
        "link (missing.md)",
        "the code reads no `RPC_URL`",
        "needs features [\"rpc\"]",
        "`--no-such-flag` is not a flag of reorg-collateral verify",
        "`frobnicate` is not a subcommand",
    ] {
        assert!(
            problems.contains(expected),
            "missed {expected:?} in:\n{problems}"
        );
    }
    let current = "`FinalityTag::Depth`, `store::ComposedStore`, `RPC_URLS`, \
        `tests/rpc/node.rs`, `claim_writer_identity`, `reorg-collateral verify --sample 5`, \
        `cargo run --release --example rpc_watch --features rpc`.\n";
    assert_eq!(
        problems_of(&code, "docs/x.md", current),
        Vec::<String>::new()
    );
}

//! What the docs may name, read from the code itself: the crate's items and their members
//! (parsed with `syn`), every word of the sources, the manifest's targets and features,
//! and the CLI's subcommands and flags (from its `--help`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::BIN;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every file under `dir` (recursively) whose name ends with one of `exts`.
pub fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && name != "node_modules" && !name.starts_with('.') {
                out.extend(files(&path, exts));
            }
        } else if exts.iter().any(|e| name.ends_with(e)) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The crate's items, by name, with the members each type or trait has.
#[derive(Default)]
pub struct Crate {
    /// Every item name (types, traits, functions, constants, modules, macros, renames).
    pub items: HashSet<String>,
    /// Modules (file modules and inline ones).
    pub modules: HashSet<String>,
    /// Per type or trait: its variants, named fields, methods, constants and types.
    members: HashMap<String, HashSet<String>>,
    /// `impl Trait for Type` pairs, by last path segment.
    impls: Vec<(String, String)>,
}

impl Crate {
    pub fn read() -> Self {
        let mut c = Crate::default();
        for file in files(&Path::new(ROOT).join("src"), &[".rs"]) {
            let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
            if let Some(stem) = stem.filter(|s| s != "mod" && s != "lib" && s != "main") {
                c.modules.insert(stem);
            }
            if let Some(dir) = file.parent().and_then(|d| d.file_name()) {
                c.modules.insert(dir.to_string_lossy().into_owned());
            }
            let text = std::fs::read_to_string(&file).expect("read a source file");
            let parsed = syn::parse_file(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
            c.add(&parsed.items);
        }
        // The test support's modules (`support::pg`), which the docs name too.
        for file in files(&Path::new(ROOT).join("tests"), &[".rs"]) {
            let dir = file.parent().and_then(|d| d.file_name());
            for name in [file.file_stem(), dir].into_iter().flatten() {
                c.modules.insert(name.to_string_lossy().into_owned());
            }
        }
        c
    }

    fn member(&mut self, ty: &syn::Ident, member: String) {
        self.members
            .entry(ty.to_string())
            .or_default()
            .insert(member);
    }

    fn add(&mut self, items: &[syn::Item]) {
        for item in items {
            match item {
                syn::Item::Struct(s) => {
                    self.items.insert(s.ident.to_string());
                    for f in s.fields.iter().filter_map(|f| f.ident.as_ref()) {
                        self.member(&s.ident, f.to_string());
                    }
                }
                syn::Item::Enum(e) => {
                    self.items.insert(e.ident.to_string());
                    for v in &e.variants {
                        self.member(&e.ident, v.ident.to_string());
                    }
                }
                syn::Item::Trait(t) => {
                    self.items.insert(t.ident.to_string());
                    for i in &t.items {
                        let name = match i {
                            syn::TraitItem::Fn(f) => f.sig.ident.to_string(),
                            syn::TraitItem::Const(c) => c.ident.to_string(),
                            syn::TraitItem::Type(t) => t.ident.to_string(),
                            _ => continue,
                        };
                        self.member(&t.ident, name);
                    }
                }
                syn::Item::Impl(i) => {
                    let syn::Type::Path(p) = &*i.self_ty else {
                        continue;
                    };
                    let Some(ty) = p.path.segments.last().map(|s| s.ident.clone()) else {
                        continue;
                    };
                    if let Some((_, t, _)) = &i.trait_
                        && let Some(t) = t.segments.last()
                    {
                        self.impls.push((t.ident.to_string(), ty.to_string()));
                    }
                    for i in &i.items {
                        let name = match i {
                            syn::ImplItem::Fn(f) => f.sig.ident.to_string(),
                            syn::ImplItem::Const(c) => c.ident.to_string(),
                            syn::ImplItem::Type(t) => t.ident.to_string(),
                            _ => continue,
                        };
                        self.member(&ty, name);
                    }
                }
                syn::Item::Fn(f) => {
                    self.items.insert(f.sig.ident.to_string());
                }
                syn::Item::Const(c) => {
                    self.items.insert(c.ident.to_string());
                }
                syn::Item::Static(s) => {
                    self.items.insert(s.ident.to_string());
                }
                syn::Item::Type(t) => {
                    self.items.insert(t.ident.to_string());
                }
                syn::Item::Macro(m) => {
                    if let Some(ident) = &m.ident {
                        self.items.insert(ident.to_string());
                    }
                }
                syn::Item::Mod(m) => {
                    self.items.insert(m.ident.to_string());
                    self.modules.insert(m.ident.to_string());
                    if let Some((_, inner)) = &m.content {
                        self.add(inner);
                    }
                }
                syn::Item::Use(u) => self.renames(&u.tree),
                _ => {}
            }
        }
    }

    /// `use a::B as C` makes `C` a name of the crate.
    fn renames(&mut self, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => self.renames(&p.tree),
            syn::UseTree::Rename(r) => {
                self.items.insert(r.rename.to_string());
            }
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| self.renames(t)),
            _ => {}
        }
    }

    /// Whether `member` is a variant, field, method, constant or associated type of `ty`,
    /// its own or of a trait it implements (a trait's provided methods included).
    pub fn has_member(&self, ty: &str, member: &str) -> bool {
        let own = |t: &str| self.members.get(t).is_some_and(|m| m.contains(member));
        own(ty)
            || self
                .impls
                .iter()
                .any(|(t, implementor)| implementor == ty && own(t))
    }
}

/// Every identifier-like word of the code (sources, tests, examples, benches, migrations,
/// configuration), and every string literal that is a single word: the names an
/// environment variable, a table, a test or a column can have.
#[derive(Default)]
pub struct Words {
    pub words: HashSet<String>,
    /// `"NAME"` string literals: what a program reads from its environment.
    pub literals: HashSet<String>,
}

impl Words {
    pub fn read() -> Self {
        let root = Path::new(ROOT);
        let mut w = Words::default();
        let mut sources = Vec::new();
        for dir in [
            "src",
            "tests",
            "examples",
            "benches",
            "migrations",
            ".cargo",
            ".ci",
        ] {
            sources.extend(files(&root.join(dir), &[".rs", ".sql", ".toml", "run"]));
        }
        sources.push(root.join("Cargo.toml"));
        // Not this checker's own tests, whose examples of drift are no names of the code.
        let checker = root.join("tests").join("cli").join("docs");
        for file in sources.into_iter().filter(|f| !f.starts_with(&checker)) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if !word.is_empty() {
                    w.words.insert(word.to_owned());
                }
            }
            for literal in text.split('"').skip(1).step_by(2) {
                w.literals.insert(literal.to_owned());
            }
        }
        w
    }
}

/// The manifest's features and targets.
#[derive(Default)]
pub struct Manifest {
    /// Per target, its kind (`example`, `test`, `bench`, `bin`) and name: the features it
    /// requires.
    pub targets: BTreeMap<(String, String), BTreeSet<String>>,
    features: BTreeMap<String, Vec<String>>,
}

impl Manifest {
    /// `Cargo.toml`'s `[features]` and `[[example|test|bench|bin]]` tables, and the targets
    /// cargo discovers (`examples/*.rs`, `tests/*.rs`, `tests/*/main.rs`, `benches/*.rs`).
    pub fn read() -> Self {
        let root = Path::new(ROOT);
        let text = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
        let mut m = Manifest::default();
        let mut section = String::new();
        let mut target: Option<(String, String)> = None;
        let list = |v: &str| -> Vec<String> {
            v.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.trim_matches(['[', ']']).to_owned();
                target = None;
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match section.as_str() {
                "features" => {
                    m.features.insert(key.to_owned(), list(value));
                }
                "example" | "test" | "bench" | "bin" if key == "name" => {
                    let t = (section.clone(), value.trim_matches('"').to_owned());
                    m.targets.entry(t.clone()).or_default();
                    target = Some(t);
                }
                _ if key == "required-features" => {
                    if let Some(t) = &target {
                        m.targets.entry(t.clone()).or_default().extend(list(value));
                    }
                }
                _ => {}
            }
        }
        for (kind, dir) in [
            ("example", "examples"),
            ("test", "tests"),
            ("bench", "benches"),
        ] {
            for entry in std::fs::read_dir(root.join(dir))
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = entry.path();
                let name = if path.extension().is_some_and(|e| e == "rs") {
                    path.file_stem()
                } else if path.join("main.rs").is_file() {
                    path.file_name()
                } else {
                    None
                };
                if let Some(name) = name {
                    let key = (kind.to_owned(), name.to_string_lossy().into_owned());
                    m.targets.entry(key).or_default();
                }
            }
        }
        m
    }

    pub fn is_feature(&self, name: &str) -> bool {
        self.features.contains_key(name)
    }

    /// `features` and every feature they enable, transitively.
    pub fn closure(&self, features: &[String]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = features.to_vec();
        while let Some(f) = todo.pop() {
            if self.features.contains_key(&f) && out.insert(f.clone()) {
                todo.extend(self.features[&f].iter().cloned());
            }
        }
        out
    }
}

/// The CLI's subcommands, and the flags of the tool and of each subcommand (with whether
/// each takes a value), from `--help`.
pub struct Cli {
    pub global: HashMap<String, bool>,
    pub subcommands: HashMap<String, HashMap<String, bool>>,
}

fn help(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--help")
        .output()
        .expect("run reorg-collateral --help");
    assert!(
        out.status.success(),
        "reorg-collateral {args:?} --help failed"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `--flag` → whether help shows a value after it (`--flag <VALUE>`).
fn flags(help: &str) -> HashMap<String, bool> {
    let mut out = HashMap::new();
    for line in help.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            let w = w.trim_end_matches(',');
            if w.starts_with("--") && w.len() > 2 {
                let (flag, inline) = match w.split_once('=') {
                    Some((f, _)) => (f, true),
                    None => (w, false),
                };
                let value = inline || words.get(i + 1).is_some_and(|n| n.starts_with('<'));
                out.entry(flag.to_owned()).or_insert(value);
            }
        }
    }
    out
}

impl Cli {
    pub fn read() -> Self {
        let top = help(&[]);
        let mut subcommands = HashMap::new();
        let mut in_commands = false;
        for line in top.lines() {
            if line.starts_with("Commands:") {
                in_commands = true;
            } else if in_commands && !line.starts_with("  ") {
                in_commands = false;
            } else if in_commands
                && let Some(name) = line.split_whitespace().next().filter(|n| *n != "help")
            {
                subcommands.insert(name.to_owned(), flags(&help(&[name])));
            }
        }
        assert!(!subcommands.is_empty(), "no subcommands in --help:\n{top}");
        Cli {
            global: flags(&top),
            subcommands,
        }
    }
}

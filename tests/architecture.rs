//! Architecture test: holds petal's source tree to its layers by reading the text of `src/`.
//!
//! Every `.rs` file under `src/` (but the binary's `main.rs`) is mapped to its module path,
//! stripped of comments and literals, and scanned for the paths it names: `use` trees and
//! inline paths (`crate::…`, `super::…`, `self::…`, child modules, external crates). Each
//! internal path is resolved to the file that defines it, following imports and re-exports
//! (`pub use child::Item;`) down to the child's file. Then, against [`LAYERS`]:
//! - a file may not reach a module of a higher layer;
//! - a file may not name a crate its layer forbids;
//! - the files of the layers, and the layers themselves, may not depend on each other in a
//!   cycle (each cycle is printed with one `file:line -> file` line per edge to cut).
//!
//! Standard library only, so it also runs alone:
//! `rustc --edition 2024 --test tests/architecture.rs -o /tmp/arch && /tmp/arch`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One layer: the modules it owns and the crates it must not name.
struct Layer {
    name: &'static str,
    /// Module paths (`crate::science`); a module belongs to the layer of its longest prefix.
    modules: &'static [&'static str],
    forbidden_crates: &'static [&'static str],
}

/// The layers of petal, from the bottom up: a layer may depend only on itself and on those
/// listed before it. docs/architecture.md explains each.
const LAYERS: &[Layer] = &[
    Layer { name: "domain", modules: &["crate::domain"], forbidden_crates: &["sqlx", "axum", "clap", "tokio"] },
    Layer { name: "metrics", modules: &["crate::job_metrics"], forbidden_crates: &["sqlx", "axum", "clap"] },
    Layer {
        name: "science",
        modules: &["crate::science"],
        forbidden_crates: &[
            "clap",
            "sqlx",
            "axum",
            "tower",
            "tower_http",
            "ort",
            "dicom_core",
            "dicom_object",
            "dicom_dictionary_std",
            "dicom_json",
            "dicom_pixeldata",
            "dicom_ul",
            "reqwest",
            "object_store",
            "tokio",
        ],
    },
    Layer {
        name: "dicom",
        modules: &["crate::dicom"],
        forbidden_crates: &["sqlx", "axum", "tower", "tower_http", "ort", "reqwest", "object_store", "clap"],
    },
    Layer {
        name: "dimse",
        modules: &["crate::dimse"],
        forbidden_crates: &["sqlx", "axum", "tower", "tower_http", "ort", "reqwest", "object_store", "clap"],
    },
    Layer { name: "inference", modules: &["crate::inference"], forbidden_crates: &["sqlx", "axum", "clap"] },
    Layer { name: "storage", modules: &["crate::storage", "crate::blobs"], forbidden_crates: &["axum", "clap", "ort"] },
    Layer { name: "auth", modules: &["crate::auth"], forbidden_crates: &["axum", "clap", "ort"] },
    Layer { name: "ingest", modules: &["crate::ingest"], forbidden_crates: &["sqlx", "axum", "clap", "ort"] },
    Layer { name: "jobs", modules: &["crate::jobs"], forbidden_crates: &["sqlx", "axum", "clap", "ort"] },
    Layer { name: "scp", modules: &["crate::scp"], forbidden_crates: &["sqlx", "axum", "clap", "ort"] },
    Layer { name: "api", modules: &["crate::api"], forbidden_crates: &["sqlx", "clap", "ort"] },
    Layer { name: "app", modules: &["crate::app", "crate"], forbidden_crates: &[] },
];

// ---------------------------------------------------------------------------------------
// Reading the tree
// ---------------------------------------------------------------------------------------

fn manifest_dir() -> PathBuf {
    match option_env!("CARGO_MANIFEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_dir().expect("current directory"),
    }
}

/// Every `.rs` file under `root/src`, keyed by its path relative to `root` (`src/a/b.rs`).
fn read_source_tree(root: &Path) -> BTreeMap<String, String> {
    let mut sources = BTreeMap::new();
    collect_rust_files(root, &root.join("src"), &mut sources);
    sources
}

fn collect_rust_files(root: &Path, dir: &Path, sources: &mut BTreeMap<String, String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rust_files(root, &path, sources);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path.strip_prefix(root).expect("under root");
            let key = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            // A file may vanish while the tree is being reorganised; skip it.
            if let Ok(text) = std::fs::read_to_string(&path) {
                sources.insert(key, text);
            }
        }
    }
}

/// The crate names of Cargo.toml's dependency tables, as code spells them (`tower_http`).
fn dependency_crates(manifest: &str) -> Vec<String> {
    let mut crates = Vec::new();
    let mut in_dependencies = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            let header = line.trim_matches(|c| c == '[' || c == ']');
            in_dependencies = header.ends_with("dependencies");
            if let Some((_, name)) = header.split_once("dependencies.") {
                crates.push(name.replace('-', "_"));
            }
        } else if in_dependencies && let Some((key, _)) = line.split_once('=') {
            crates.push(key.trim().trim_matches('"').replace('-', "_"));
        }
    }
    crates
}

/// `src/lib.rs` → `crate`; `src/a.rs`, `src/a/mod.rs` → `crate::a`; `src/a/b.rs` →
/// `crate::a::b`. None for files outside the library (`src/main.rs`, `src/bin/`).
fn module_path_of(file: &str) -> Option<Vec<String>> {
    let inside = file.strip_prefix("src/")?.strip_suffix(".rs")?;
    if inside == "main" || inside.starts_with("bin/") {
        return None;
    }
    let mut module = vec!["crate".to_string()];
    module.extend(inside.split('/').map(str::to_string));
    if matches!(module.last().map(String::as_str), Some("lib") if module.len() == 2)
        || module.last().is_some_and(|last| last == "mod")
    {
        module.pop();
    }
    Some(module)
}

// ---------------------------------------------------------------------------------------
// Stripping comments and literals (line numbers kept)
// ---------------------------------------------------------------------------------------

/// The source with comments, strings and char literals blanked out; newlines are kept.
fn strip_comments_and_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut code = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let end = literal_or_comment_end(&chars, i);
        match end {
            Some(end) => {
                chars[i..end].iter().for_each(|&c| code.push(if c == '\n' { '\n' } else { ' ' }));
                i = end;
            }
            None => {
                code.push(chars[i]);
                i += 1;
            }
        }
    }
    code
}

/// Where the comment or literal starting at `i` ends, if one starts there.
fn literal_or_comment_end(chars: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| chars.get(k).copied();
    match (chars[i], at(i + 1)) {
        ('/', Some('/')) => Some((i..chars.len()).find(|&k| chars[k] == '\n').unwrap_or(chars.len())),
        ('/', Some('*')) => Some(block_comment_end(chars, i)),
        ('"', _) => Some(quoted_end(chars, i + 1, '"')),
        ('\'', _) => char_literal_end(chars, i),
        _ => raw_string_end(chars, i),
    }
}

fn block_comment_end(chars: &[char], start: usize) -> usize {
    let (mut depth, mut k) = (0, start);
    while k < chars.len() {
        match (chars[k], chars.get(k + 1)) {
            ('/', Some('*')) => (depth, k) = (depth + 1, k + 2),
            ('*', Some('/')) => (depth, k) = (depth - 1, k + 2),
            _ => k += 1,
        }
        if depth == 0 {
            return k;
        }
    }
    chars.len()
}

/// The index after the closing `quote`, skipping escapes.
fn quoted_end(chars: &[char], mut k: usize, quote: char) -> usize {
    while k < chars.len() {
        match chars[k] {
            '\\' => k += 2,
            c if c == quote => return k + 1,
            _ => k += 1,
        }
    }
    chars.len()
}

/// `'x'`, `'\n'`, `'\u{1F600}'` are char literals; `'a` in `&'a str` is a lifetime.
fn char_literal_end(chars: &[char], i: usize) -> Option<usize> {
    match (chars.get(i + 1), chars.get(i + 2)) {
        (Some('\\'), _) => Some(quoted_end(chars, i + 3, '\'')),
        (Some(_), Some('\'')) => Some(i + 3),
        _ => None,
    }
}

/// `r"…"`, `r#"…"#`, `br"…"`, `cr##"…"##`; not raw identifiers such as `r#type`.
fn raw_string_end(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && is_ident_char(chars[i - 1]) {
        return None;
    }
    let after_r = match (chars[i], chars.get(i + 1)) {
        ('r', _) => i + 1,
        ('b' | 'c', Some('r')) => i + 2,
        _ => return None,
    };
    let hashes = chars[after_r..].iter().take_while(|&&c| c == '#').count();
    if chars.get(after_r + hashes) != Some(&'"') {
        return None;
    }
    let closing: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
    let body = after_r + hashes + 1;
    let end = (body..chars.len()).find(|&k| chars[k..].starts_with(&closing));
    Some(end.map_or(chars.len(), |k| k + closing.len()))
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Token {
    text: String,
    line: usize,
    is_ident: bool,
}

fn tokenize(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let (mut tokens, mut line, mut i) = (Vec::new(), 1, 0);
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            line += usize::from(c == '\n');
            i += 1;
            continue;
        }
        let end = token_end(&chars, i);
        let text: String = chars[i..end].iter().collect();
        let text = text.strip_prefix("r#").map(str::to_string).unwrap_or(text);
        tokens.push(Token { text, line, is_ident: c.is_alphabetic() || c == '_' });
        i = end;
    }
    tokens
}

/// Where the token starting at `i` ends: a word (identifier, `r#raw` identifier, number,
/// lifetime), `::`, or any other single character.
fn token_end(chars: &[char], i: usize) -> usize {
    let word_end = |from: usize| (from..chars.len()).find(|&k| !is_ident_char(chars[k])).unwrap_or(chars.len());
    match (chars[i], chars.get(i + 1), chars.get(i + 2)) {
        ('r', Some('#'), Some(&c)) if is_ident_char(c) => word_end(i + 2),
        (':', Some(':'), _) => i + 2,
        (c, _, _) if is_ident_char(c) || c == '\'' => word_end(i + 1),
        _ => i + 1,
    }
}

// ---------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// An absolute path inside the crate, `["crate", "a", "Item"]`.
    Internal(Vec<String>),
    External(String),
}

#[derive(Debug, Clone)]
struct Reference {
    line: usize,
    written: String,
    target: Target,
}

/// What one file names, and the names its top level imports (for following re-exports).
#[derive(Debug, Default)]
struct FileFacts {
    module: Vec<String>,
    references: Vec<Reference>,
    imports: BTreeMap<String, Vec<String>>,
    exported_macros: Vec<String>,
}

/// What a file's paths are resolved against: the modules that have files, and the crates.
struct Namespace {
    module_files: BTreeMap<String, String>,
    external_crates: BTreeSet<String>,
}

impl Namespace {
    /// Where a path written in `current` points, or None for std, locals and the unknown.
    fn locate(&self, segments: &[String], current: &[String]) -> Option<Target> {
        let first = segments.first()?.as_str();
        let rest = || segments[1..].to_vec();
        match first {
            "crate" => Some(Target::Internal(segments.to_vec())),
            "self" => Some(Target::Internal([current.to_vec(), rest()].concat())),
            "super" => {
                let supers = segments.iter().take_while(|s| *s == "super").count();
                let base = current.get(..current.len().checked_sub(supers).filter(|&n| n > 0)?)?;
                Some(Target::Internal([base, &segments[supers..]].concat()))
            }
            "::" => {
                let name = segments.get(1)?;
                let is_std = ["std", "core", "alloc", "proc_macro"].contains(&name.as_str());
                (!is_std).then(|| Target::External(name.clone()))
            }
            _ if self.module_files.contains_key(&join([current, &segments[..1]].concat())) => {
                Some(Target::Internal([current, segments].concat()))
            }
            _ if self.external_crates.contains(first) => Some(Target::External(first.to_string())),
            _ => None,
        }
    }
}

fn join(segments: impl AsRef<[String]>) -> String {
    segments.as_ref().join("::")
}

/// One leaf of a `use` tree: its full path and the name it binds (None for globs, `_`).
struct UseLeaf {
    path: Vec<String>,
    binding: Option<String>,
    line: usize,
}

/// Reads the `use` tree starting at `pos` under `prefix`; returns the position after it.
fn parse_use_tree(tokens: &[Token], mut pos: usize, prefix: Vec<String>, leaves: &mut Vec<UseLeaf>) -> usize {
    let text = |k: usize| tokens.get(k).map_or("", |t| t.text.as_str());
    let mut path = prefix;
    while pos < tokens.len() {
        let line = tokens[pos].line;
        match text(pos) {
            "::" => {
                path.push("::".into());
                pos += 1;
            }
            "{" => {
                pos += 1;
                while pos < tokens.len() && text(pos) != "}" {
                    pos = parse_use_tree(tokens, pos, path.clone(), leaves);
                    pos += usize::from(text(pos) == ",");
                }
                return pos + 1;
            }
            "*" => {
                leaves.push(UseLeaf { path, binding: None, line });
                return pos + 1;
            }
            name if tokens[pos].is_ident => {
                if name != "self" || path.is_empty() {
                    path.push(name.to_string());
                }
                pos += 1;
                if text(pos) == "::" {
                    pos += 1;
                    continue;
                }
                let mut binding = path.last().cloned();
                if text(pos) == "as" {
                    binding = Some(text(pos + 1).to_string()).filter(|b| b != "_");
                    pos += 2;
                }
                leaves.push(UseLeaf { path, binding, line });
                return pos;
            }
            _ => return pos,
        }
    }
    pos
}

/// The path starting at token `i` (`a::b::c`, `$crate::x`, `::clap::Y`), with the index
/// after it; None when no path of at least two segments starts there.
fn path_at(tokens: &[Token], i: usize) -> Option<(Vec<String>, usize)> {
    let text = |k: usize| tokens.get(k).map_or("", |t| t.text.as_str());
    let previous = if i > 0 { text(i - 1) } else { "" };
    let before_previous = if i > 1 { text(i - 2) } else { "" };
    let after_visibility_in = previous == "in" && before_previous == "(";
    if previous == "::" || after_visibility_in {
        return None;
    }
    let (mut segments, mut k) = match text(i) {
        "$" if text(i + 1) == "crate" => (vec!["crate".to_string()], i + 2),
        "::" if !i.checked_sub(1).is_some_and(|p| tokens[p].is_ident || text(p) == ">") => (vec!["::".to_string()], i),
        _ if tokens[i].is_ident => (vec![tokens[i].text.clone()], i + 1),
        _ => return None,
    };
    while text(k) == "::" && tokens.get(k + 1).is_some_and(|t| t.is_ident) {
        segments.push(tokens[k + 1].text.clone());
        k += 2;
    }
    (segments.len() >= 2).then_some((segments, k))
}

/// Everything one file names, resolved against `namespace`.
fn scan_file(source: &str, module: &[String], namespace: &Namespace) -> FileFacts {
    let tokens = tokenize(&strip_comments_and_literals(source));
    let text = |k: usize| tokens.get(k).map_or("", |t| t.text.as_str());
    let mut facts = FileFacts { module: module.to_vec(), ..FileFacts::default() };
    let (mut depth, mut inline_modules, mut i) = (0usize, Vec::<(String, usize)>::new(), 0);
    while i < tokens.len() {
        let current: Vec<String> = module.iter().chain(inline_modules.iter().map(|(m, _)| m)).cloned().collect();
        match text(i) {
            "use" if tokens[i].is_ident => {
                let mut leaves = Vec::new();
                i = parse_use_tree(&tokens, i + 1, Vec::new(), &mut leaves);
                for leaf in leaves {
                    let Some(reference) = locate_reference(namespace, &leaf.path, &current, leaf.line) else {
                        continue;
                    };
                    if let (0, Target::Internal(path), Some(name)) = (depth, &reference.target, leaf.binding) {
                        facts.imports.insert(name, path.clone());
                    }
                    facts.references.push(reference);
                }
                continue;
            }
            "mod" if tokens.get(i + 1).is_some_and(|t| t.is_ident) && text(i + 2) == "{" => {
                inline_modules.push((text(i + 1).to_string(), depth));
            }
            "macro_rules" if text(i + 1) == "!" && is_macro_exported(&tokens[i.saturating_sub(8)..i]) => {
                facts.exported_macros.push(text(i + 2).to_string());
            }
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline_modules.last().is_some_and(|(_, d)| *d == depth) {
                    inline_modules.pop();
                }
            }
            _ => {
                if let Some((segments, next)) = path_at(&tokens, i) {
                    facts.references.extend(locate_reference(namespace, &segments, &current, tokens[i].line));
                    i = next;
                    continue;
                }
            }
        }
        i += 1;
    }
    facts
}

fn locate_reference(namespace: &Namespace, segments: &[String], current: &[String], line: usize) -> Option<Reference> {
    let target = namespace.locate(segments, current)?;
    Some(Reference { line, written: join(segments), target })
}

fn is_macro_exported(attributes_before: &[Token]) -> bool {
    attributes_before.iter().any(|t| t.text == "macro_export")
}

// ---------------------------------------------------------------------------------------
// The project: files, resolution, layers
// ---------------------------------------------------------------------------------------

struct Project<'l> {
    files: BTreeMap<String, FileFacts>,
    module_files: BTreeMap<String, String>,
    crate_macros: BTreeMap<String, String>,
    layers: &'l [Layer],
}

impl<'l> Project<'l> {
    fn new(sources: &BTreeMap<String, String>, layers: &'l [Layer], extra_crates: &[String]) -> Self {
        let modules: BTreeMap<String, Vec<String>> =
            sources.keys().filter_map(|file| Some((file.clone(), module_path_of(file)?))).collect();
        let module_files = modules.iter().map(|(file, module)| (join(module), file.clone())).collect();
        let forbidden = layers.iter().flat_map(|l| l.forbidden_crates.iter().map(|c| c.to_string()));
        let external_crates = forbidden.chain(extra_crates.iter().cloned()).collect();
        let namespace = Namespace { module_files, external_crates };
        let files: BTreeMap<String, FileFacts> = modules
            .iter()
            .map(|(file, module)| (file.clone(), scan_file(&sources[file], module, &namespace)))
            .collect();
        let crate_macros = files
            .iter()
            .flat_map(|(file, facts)| facts.exported_macros.iter().map(move |m| (m.clone(), file.clone())))
            .collect();
        Project { files, module_files: namespace.module_files, crate_macros, layers }
    }

    /// The longest prefix of `path` that is a module with a file: (file, prefix length).
    fn module_file_of(&self, path: &[String]) -> Option<(&String, usize)> {
        (1..=path.len()).rev().find_map(|n| Some((self.module_files.get(&join(&path[..n]))?, n)))
    }

    /// The files an internal path passes through, ending with the one defining it: imports
    /// and re-exports (`pub use child::Item`) of each module file are followed.
    fn resolve(&self, path: &[String]) -> Vec<String> {
        let (mut path, mut chain) = (path.to_vec(), Vec::<String>::new());
        for _ in 0..16 {
            let Some((file, used)) = self.module_file_of(&path) else { break };
            if chain.last() != Some(file) {
                chain.push(file.clone());
            }
            let Some(name) = path.get(used) else { break };
            let next = match self.files[file].imports.get(name) {
                Some(imported) => [imported.as_slice(), &path[used + 1..]].concat(),
                None if used == 1 && self.crate_macros.contains_key(name) => {
                    chain.push(self.crate_macros[name].clone());
                    break;
                }
                None => break,
            };
            if next == path {
                break;
            }
            path = next;
        }
        chain
    }

    /// The index of the layer owning `path` (longest matching module prefix).
    fn layer_of(&self, path: &str) -> Option<usize> {
        let owns = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}::"));
        let longest_owning_prefix = |layer: &Layer| layer.modules.iter().filter(|p| owns(p)).map(|p| p.len()).max();
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(index, layer)| Some((longest_owning_prefix(layer)?, index)))
            .max()
            .map(|(_, index)| index)
    }

    fn layer_of_file(&self, file: &str) -> Option<usize> {
        self.layer_of(&join(&self.files.get(file)?.module))
    }

    /// Every internal reference, with the files it resolves through.
    fn internal_edges(&self) -> Vec<Edge> {
        let mut edges = Vec::new();
        for (file, facts) in &self.files {
            for reference in &facts.references {
                let Target::Internal(path) = &reference.target else { continue };
                let chain = self.resolve(path);
                edges.push(Edge {
                    from: file.clone(),
                    line: reference.line,
                    absolute: join(path),
                    to: chain.last().filter(|to| *to != file).cloned(),
                    chain,
                });
            }
        }
        edges
    }
}

struct Edge {
    from: String,
    line: usize,
    absolute: String,
    /// The defining file; None when it is the referring file itself or has no file.
    to: Option<String>,
    chain: Vec<String>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    file: String,
    line: usize,
    message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

// ---------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------

/// All violations of the layer rules in `sources` (relative path → text).
fn check_architecture(sources: &BTreeMap<String, String>, layers: &[Layer], extra_crates: &[String]) -> Vec<Violation> {
    let project = Project::new(sources, layers, extra_crates);
    let edges = project.internal_edges();
    let mut violations = upward_references(&project, &edges);
    violations.extend(forbidden_crates(&project));
    violations.extend(file_cycles(&project, &edges));
    violations.extend(layer_cycles(&project, &edges));
    violations
}

fn upward_references(project: &Project, edges: &[Edge]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for edge in edges.iter().filter(|e| e.to.is_some() || e.chain.is_empty()) {
        let Some(own) = project.layer_of_file(&edge.from) else { continue };
        let chain_layers = edge.chain.iter().filter_map(|f| project.layer_of_file(f));
        let Some(reached) = chain_layers.chain(project.layer_of(&edge.absolute)).max() else { continue };
        if reached > own {
            let defined_in = edge.to.as_ref().map(|to| format!(" (defined in {to})")).unwrap_or_default();
            let (own, reached) = (project.layers[own].name, project.layers[reached].name);
            let message = format!("layer `{own}` reaches up to layer `{reached}`: `{}`{defined_in}", edge.absolute);
            violations.push(Violation { file: edge.from.clone(), line: edge.line, message });
        }
    }
    violations
}

fn forbidden_crates(project: &Project) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (file, facts) in &project.files {
        let Some(layer) = project.layer_of_file(file).map(|l| &project.layers[l]) else { continue };
        for reference in &facts.references {
            let Target::External(name) = &reference.target else { continue };
            if layer.forbidden_crates.contains(&name.as_str()) {
                let message = format!("layer `{}` must not use crate `{name}`: `{}`", layer.name, reference.written);
                violations.push(Violation { file: file.clone(), line: reference.line, message });
            }
        }
    }
    violations
}

/// Cycles among the files of the layers; each with the edges that make it, to cut one.
fn file_cycles(project: &Project, edges: &[Edge]) -> Vec<Violation> {
    let checked: Vec<String> = project.files.keys().filter(|f| project.layer_of_file(f).is_some()).cloned().collect();
    let index_of = |file: &str| checked.iter().position(|f| f == file);
    let mut graph = Graph::new();
    for edge in edges {
        if let (Some(from), Some(to)) = (index_of(&edge.from), edge.to.as_deref().and_then(index_of)) {
            graph.entry((from, to)).or_insert(edge);
        }
    }
    cycle_violations("files", &checked, &graph)
}

/// Cycles between the layers themselves, each with one example edge per pair of layers.
fn layer_cycles(project: &Project, edges: &[Edge]) -> Vec<Violation> {
    let names: Vec<String> = project.layers.iter().map(|layer| layer.name.to_string()).collect();
    let mut graph = Graph::new();
    for edge in edges {
        let to = edge.to.as_deref().and_then(|to| project.layer_of_file(to));
        if let (Some(from), Some(to)) = (project.layer_of_file(&edge.from), to)
            && from != to
        {
            graph.entry((from, to)).or_insert(edge);
        }
    }
    cycle_violations("layers", &names, &graph)
}

/// A dependency graph over numbered nodes, each arc with the edge of code that makes it.
type Graph<'e> = BTreeMap<(usize, usize), &'e Edge>;

fn cycle_violations(what: &str, names: &[String], graph: &Graph) -> Vec<Violation> {
    let mut violations = Vec::new();
    for members in strongly_connected_components(names.len(), graph) {
        let inside: Vec<&Edge> = graph
            .iter()
            .filter(|((from, to), _)| members.contains(from) && members.contains(to))
            .map(|(_, e)| *e)
            .collect();
        let member_names: Vec<&str> = members.iter().map(|&m| names[m].as_str()).collect();
        let edge_lines: String = inside
            .iter()
            .map(|e| format!("\n    {}:{} -> {}", e.from, e.line, e.to.as_deref().unwrap_or("?")))
            .collect();
        let message = format!("{what} depend on each other in a cycle: {}{edge_lines}", member_names.join(", "));
        violations.push(Violation { file: inside[0].from.clone(), line: inside[0].line, message });
    }
    violations
}

/// The strongly connected components of more than one node: the nodes that reach each other.
fn strongly_connected_components(node_count: usize, graph: &Graph) -> Vec<Vec<usize>> {
    let reach: Vec<BTreeSet<usize>> = (0..node_count).map(|node| reachable_from(node, graph)).collect();
    let mut components: Vec<Vec<usize>> = Vec::new();
    for node in 0..node_count {
        let component: Vec<usize> = reach[node].iter().copied().filter(|&other| reach[other].contains(&node)).collect();
        if component.len() > 1 && component[0] == node {
            components.push(component);
        }
    }
    components
}

/// Every node reachable from `start`, itself included.
fn reachable_from(start: usize, graph: &Graph) -> BTreeSet<usize> {
    let (mut seen, mut pending) = (BTreeSet::from([start]), vec![start]);
    while let Some(node) = pending.pop() {
        for &(_, to) in graph.range((node, 0)..=(node, usize::MAX)).map(|(arc, _)| arc) {
            if seen.insert(to) {
                pending.push(to);
            }
        }
    }
    seen
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn the_source_tree_follows_its_layers() {
    let root = manifest_dir();
    let sources = read_source_tree(&root);
    assert!(sources.contains_key("src/lib.rs"), "no src/lib.rs under {}", root.display());
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let mut violations = check_architecture(&sources, LAYERS, &dependency_crates(&manifest));
    violations.sort();
    let report: Vec<String> = violations.iter().map(Violation::to_string).collect();
    assert!(report.is_empty(), "{} layering violations:\n{}", report.len(), report.join("\n"));
}

/// The layers the fixtures are checked against, from the bottom up.
const FIXTURE_LAYERS: &[Layer] = &[
    Layer { name: "science", modules: &["crate::science"], forbidden_crates: &["clap", "sqlx"] },
    Layer { name: "dicom", modules: &["crate::dicom"], forbidden_crates: &["sqlx"] },
    Layer { name: "inference", modules: &["crate::inference"], forbidden_crates: &[] },
    Layer { name: "storage", modules: &["crate::storage"], forbidden_crates: &[] },
];

fn fixture(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files.iter().map(|(path, text)| (path.to_string(), text.to_string())).collect()
}

fn violations_in(files: &[(&str, &str)]) -> Vec<String> {
    let found = check_architecture(&fixture(files), FIXTURE_LAYERS, &[]);
    found.iter().map(Violation::to_string).collect()
}

fn assert_one_violation_containing(found: &[String], expected: &[&str]) {
    assert_eq!(found.len(), 1, "expected one violation, got:\n{}", found.join("\n"));
    for part in expected {
        assert!(found[0].contains(part), "`{part}` missing from:\n{}", found[0]);
    }
}

#[test]
fn an_upward_use_is_caught() {
    let found = violations_in(&[("src/science/window.rs", "\n\nuse crate::dicom::volume::{Slice, assemble};\n")]);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("src/science/window.rs:3: layer `science` reaches up to layer `dicom`"));
    assert!(found.iter().any(|v| v.contains("`crate::dicom::volume::Slice`")));
    assert!(found.iter().any(|v| v.contains("`crate::dicom::volume::assemble`")));
}

#[test]
fn a_forbidden_crate_in_a_derive_is_caught() {
    let found = violations_in(&[("src/science/kind.rs", "#[derive(Debug, clap::ValueEnum)]\npub enum Kind { A }\n")]);
    assert_one_violation_containing(&found, &["src/science/kind.rs:1:", "crate `clap`", "clap::ValueEnum"]);
}

#[test]
fn an_inline_upward_path_is_caught() {
    let source = "pub fn f() -> Result<(), String> {\n    let e = crate::inference::InferenceError::InvalidShape(3);\n    Ok(())\n}\n";
    let found = violations_in(&[("src/science/shape.rs", source)]);
    assert_one_violation_containing(&found, &["src/science/shape.rs:2:", "layer `inference`", "InvalidShape"]);
}

#[test]
fn only_the_upward_part_of_a_grouped_use_is_caught() {
    let found = violations_in(&[
        ("src/science/model/mod.rs", "pub struct Net;\n"),
        ("src/science/train.rs", "use crate::{science::model::Net, dicom::write};\n"),
    ]);
    assert_one_violation_containing(&found, &["src/science/train.rs:1:", "`crate::dicom::write`"]);
}

#[test]
fn a_two_file_cycle_is_caught() {
    let found = violations_in(&[
        ("src/science/a.rs", "use super::b::X;\npub struct Y;\n"),
        ("src/science/b.rs", "pub struct X;\nuse super::a::Y;\n"),
    ]);
    assert_one_violation_containing(
        &found,
        &[
            "cycle: src/science/a.rs, src/science/b.rs",
            "src/science/a.rs:1 -> src/science/b.rs",
            "src/science/b.rs:2 -> src/science/a.rs",
        ],
    );
}

#[test]
fn a_cycle_through_a_re_export_is_caught() {
    let found = violations_in(&[
        ("src/science/thing/mod.rs", "mod child;\nmod other;\npub use child::Thing;\n"),
        ("src/science/thing/child.rs", "use super::other::Z;\npub struct Thing;\n"),
        ("src/science/thing/other.rs", "use super::Thing;\npub struct Z;\n"),
    ]);
    // `super::Thing` is followed through mod.rs's re-export to child.rs, so the cycle is
    // between child.rs and other.rs; the re-exporting mod.rs is no hub of it.
    assert_one_violation_containing(
        &found,
        &[
            "src/science/thing/child.rs:1 -> src/science/thing/other.rs",
            "src/science/thing/other.rs:1 -> src/science/thing/child.rs",
        ],
    );
    assert!(!found[0].contains("mod.rs"), "{}", found[0]);
}

#[test]
fn a_dicom_file_reaching_storage_or_sqlx_is_caught() {
    let source = "use crate::storage::Database;\n\npub fn f() { let _ = sqlx::query(\"SELECT 1\"); }\n";
    let found = violations_in(&[("src/dicom/index.rs", source)]);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("src/dicom/index.rs:1: layer `dicom` reaches up to layer `storage`"), "{found:#?}");
    assert!(found[1].starts_with("src/dicom/index.rs:3: layer `dicom` must not use crate `sqlx`"), "{found:#?}");
}

#[test]
fn comments_strings_and_lifetimes_raise_nothing() {
    let science = r####"//! Mentions crate::dicom::x and clap::Parser in its docs.
/* crate::dicom::a /* nested crate::dicom::b */ clap::Y */
/// Names `crate::dicom::c` in a doc comment.
pub fn f<'a>(s: &'a str) -> &'a str {
    let _ = "crate::dicom::z \" clap::Y";
    let _ = r##"crate::dicom::w "# clap::"##;
    let _ = b"crate::dicom::v";
    let (_, _) = ('"', b'\'');
    let _ = '\u{1F600}';
    s
}
use super::x; // seen only if every literal above was closed where it ends
"####;
    let files = [("src/science/mod.rs", science), ("src/science/x.rs", ""), ("src/x.rs", "")];
    assert_eq!(violations_in(&files), Vec::<String>::new());
    let project = Project::new(&fixture(&files), FIXTURE_LAYERS, &[]);
    let targets: Vec<&Target> = project.files["src/science/mod.rs"].references.iter().map(|r| &r.target).collect();
    assert_eq!(targets, [&Target::Internal(vec!["crate".into(), "x".into()])]);
    assert_eq!(project.resolve(&["crate".into(), "x".into()]), ["src/x.rs"]);
}

#[test]
fn an_upward_path_through_super_super_is_caught() {
    // From crate::science::model::net, `super` is crate::science::model: so it takes three
    // `super`s to reach the crate root, and `super::super::dicom` is crate::science::dicom.
    let source = "use super::super::super::dicom::x;\nuse super::super::dicom::y;\n";
    let found = violations_in(&[("src/science/model/net.rs", source)]);
    assert_one_violation_containing(&found, &["src/science/model/net.rs:1:", "`crate::dicom::x`", "layer `dicom`"]);
}

#[test]
fn super_inside_an_inline_module_counts_from_that_module() {
    // Inside `mod tests` of crate::science::model::net, three `super`s only reach crate::science.
    let source =
        "#[cfg(test)]\nmod tests {\n    use super::super::super::dicom::x;\n}\nuse super::super::super::dicom::y;\n";
    let found = violations_in(&[("src/science/model/net.rs", source)]);
    assert_one_violation_containing(&found, &["src/science/model/net.rs:5:", "`crate::dicom::y`"]);
}

#[test]
fn a_cycle_between_layers_is_caught() {
    let found = violations_in(&[
        ("src/science/image.rs", "use crate::dicom::volume::Volume;\npub struct Image;\n"),
        ("src/dicom/volume.rs", "use crate::science::image::Image;\npub struct Volume;\n"),
    ]);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found.iter().any(|v| v.contains("reaches up to layer `dicom`")), "{found:#?}");
    assert!(found.iter().any(|v| v.contains("files depend on each other in a cycle")), "{found:#?}");
    let layers = found.iter().find(|v| v.contains("layers depend on each other in a cycle: science, dicom"));
    assert!(layers.is_some_and(|v| v.contains("src/science/image.rs:1 -> src/dicom/volume.rs")), "{found:#?}");
}

#[test]
fn files_map_to_their_modules() {
    let module = |file: &str| module_path_of(file).map(join);
    assert_eq!(module("src/lib.rs").as_deref(), Some("crate"));
    assert_eq!(module("src/a.rs").as_deref(), Some("crate::a"));
    assert_eq!(module("src/a/mod.rs").as_deref(), Some("crate::a"));
    assert_eq!(module("src/a/b.rs").as_deref(), Some("crate::a::b"));
    assert_eq!(module("src/a/lib.rs").as_deref(), Some("crate::a::lib"));
    assert_eq!(module("src/x/tests.rs").as_deref(), Some("crate::x::tests"));
    assert_eq!(module("src/main.rs"), None);
}

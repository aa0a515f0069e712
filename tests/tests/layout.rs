//! The runtime's folders import each other in the order data flows, never back up (the module
//! map in `hosted/src/docs/design.md`).

use std::fs;
use std::path::{Path, PathBuf};

/// Each concept folder of `hosted/src`, lowest first: a folder may import only those before it.
/// Folders on one rank are siblings and must not import each other.
const FLOW: &[(&str, u8)] = &[
    ("util", 0),
    ("service", 1),
    ("telemetry", 2),
    ("status", 2),
    ("di", 3),
    ("registry", 4),
    ("config", 5),
    ("host", 6),
    ("prometheus", 7),
    ("timer", 8),
    ("queue", 8),
    ("web", 8),
    ("systemd", 8),
    ("durable", 9),
    ("testing", 10),
];

fn rank(concept: &str) -> Option<u8> {
    FLOW.iter()
        .find(|(name, _)| *name == concept)
        .map(|(_, rank)| *rank)
}

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hosted/src")
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("a readable source folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The concept a source file belongs to: its folder, or its own name for a top-level file.
fn concept_of(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).expect("a file under the root");
    let first = relative.components().next().expect("a path");
    let first = first.as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::name` a line of code (not a comment) names.
fn crate_references(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        names.push(name);
    }
    names
}

#[test]
fn concept_folders_import_only_what_comes_before_them_in_the_flow() {
    let root = source_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in &files {
        let concept = concept_of(&root, file);
        let Some(own) = rank(&concept) else {
            // `lib.rs`, `private.rs` (generated code's facade) and `docs.rs` sit above everything.
            continue;
        };
        checked += 1;
        let text = fs::read_to_string(file).expect("a readable file");
        for (number, line) in text.lines().enumerate() {
            for name in crate_references(line) {
                if name == concept {
                    continue;
                }
                let place = format!(
                    "{}:{}",
                    file.strip_prefix(&root).unwrap().display(),
                    number + 1
                );
                match rank(&name) {
                    Some(theirs) if theirs < own || name == "util" => {}
                    Some(_) => wrong.push(format!("{place}: `{concept}` imports `{name}`")),
                    None if name.starts_with(char::is_uppercase) => wrong.push(format!(
                        "{place}: `crate::{name}` goes through the crate root; name its module"
                    )),
                    None => wrong.push(format!(
                        "{place}: `{concept}` imports `{name}`, which is not a concept below it"
                    )),
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} files were checked");
    assert!(
        wrong.is_empty(),
        "imports against the flow:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_design_guide_maps_every_folder() {
    let root = source_root();
    let guide = fs::read_to_string(root.join("docs/design.md")).expect("the design guide");
    for (concept, _) in FLOW {
        let path = root.join(concept);
        let entry = if path.is_dir() {
            format!("`{concept}/`")
        } else {
            format!("`{concept}.rs`")
        };
        assert!(
            path.is_dir() || root.join(format!("{concept}.rs")).is_file(),
            "{concept} is in the flow but not in the tree"
        );
        assert!(
            guide.contains(&entry),
            "the design guide's module map lacks {entry}"
        );
    }
    for entry in fs::read_dir(&root).expect("the source root") {
        let path = entry.expect("an entry").path();
        if path.is_dir() && path.file_name().is_some_and(|name| name != "docs") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                rank(&name).is_some(),
                "folder `{name}/` is not placed in the flow of this test"
            );
        }
    }
}

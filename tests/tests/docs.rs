//! The documentation agrees with itself: the README's quickstart is the crate docs' quickstart,
//! and CI runs the test command the README names.

use std::path::Path;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path))
        .unwrap_or_else(|error| panic!("reading {path}: {error}"))
}

fn quickstart(text: &str) -> &str {
    let start = text
        .find("<!-- quickstart -->")
        .expect("a quickstart start marker");
    let end = text
        .find("<!-- /quickstart -->")
        .expect("a quickstart end marker");
    &text[start..end]
}

#[test]
fn the_readme_quickstart_is_the_crate_docs_quickstart() {
    assert_eq!(
        quickstart(&read("README.md")),
        quickstart(&read("hosted/src/docs/overview.md")),
        "README.md and hosted/src/docs/overview.md must share the quickstart word for word"
    );
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = read("README.md");
    let ci = read(".ci/run");
    for command in [
        "cargo test --workspace",
        "cargo run -p hosted-examples --bin demo",
    ] {
        assert!(readme.contains(command), "the README names `{command}`");
    }
    assert!(
        ci.contains("\ncargo test --workspace\n"),
        "CI runs the README's test command"
    );
    assert!(ci.contains("cargo fmt --all -- --check"));
    assert!(ci.contains("cargo clippy --workspace --all-targets -- -D warnings"));
}

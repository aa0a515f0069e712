//! The crates a binary depends on that themselves depend on `hosted`, read from `Cargo.lock`:
//! the libraries whose services the linker may drop when the binary never names them.
//!
//! Read at expansion time, best effort: without a lock file, or without the package in it, the
//! list is empty and nothing is reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One `[[package]]` of a lock file: its name and the names of its dependencies.
struct Package {
    name: String,
    dependencies: Vec<String>,
}

/// The direct dependencies of the package being compiled that depend on `hosted`, as crate
/// names (`linked_services` for `linked-services`).
pub(crate) fn libraries_using_hosted() -> Vec<String> {
    let (Some(dir), Ok(package)) = (
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        std::env::var("CARGO_PKG_NAME"),
    ) else {
        return Vec::new();
    };
    let Some(text) = find_lock_file(&dir).and_then(|path| std::fs::read_to_string(path).ok())
    else {
        return Vec::new();
    };
    using_hosted(&parse(&text), &package)
}

fn find_lock_file(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join("Cargo.lock"))
        .find(|path| path.is_file())
}

fn parse(text: &str) -> Vec<Package> {
    let mut packages = Vec::new();
    let mut current: Option<Package> = None;
    let mut in_dependencies = false;
    for line in text.lines().map(str::trim) {
        if line == "[[package]]" {
            packages.extend(current.take());
            current = Some(Package {
                name: String::new(),
                dependencies: Vec::new(),
            });
            in_dependencies = false;
        } else if let Some(package) = current.as_mut() {
            if let Some(name) = line.strip_prefix("name = ") {
                name.trim_matches('"').clone_into(&mut package.name);
            } else if line.starts_with("dependencies = [") {
                in_dependencies = !line.ends_with(']');
            } else if in_dependencies {
                if line == "]" {
                    in_dependencies = false;
                } else if let Some(name) = line
                    .trim_matches(|c| c == '"' || c == ',')
                    .split_whitespace()
                    .next()
                {
                    package.dependencies.push(name.trim_matches('"').to_owned());
                }
            }
        }
    }
    packages.extend(current);
    packages
}

fn using_hosted(packages: &[Package], package: &str) -> Vec<String> {
    let by_name: HashMap<&str, &Package> = packages
        .iter()
        .map(|package| (package.name.as_str(), package))
        .collect();
    let Some(own) = by_name.get(package) else {
        return Vec::new();
    };
    let mut found: Vec<String> = own
        .dependencies
        .iter()
        .filter(|name| !matches!(name.as_str(), "hosted" | "hosted-macros"))
        .filter(|name| {
            by_name.get(name.as_str()).is_some_and(|dependency| {
                dependency.dependencies.iter().any(|name| name == "hosted")
            })
        })
        .map(|name| name.replace('-', "_"))
        .collect();
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "billing-jobs",
 "hosted",
 "serde 1.0.219",
]

[[package]]
name = "billing-jobs"
version = "0.1.0"
dependencies = [
 "hosted",
]

[[package]]
name = "serde"
version = "1.0.219"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "hosted"
version = "0.1.0"
dependencies = ["hosted-macros"]
"#;

    #[test]
    fn the_libraries_of_a_package_that_use_hosted_are_found() {
        let packages = parse(LOCK);
        assert_eq!(using_hosted(&packages, "app"), ["billing_jobs"]);
        assert!(using_hosted(&packages, "billing-jobs").is_empty());
        assert!(using_hosted(&packages, "unknown").is_empty());
    }
}

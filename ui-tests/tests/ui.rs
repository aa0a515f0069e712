//! Compile-fail and compile-pass cases for `#[hosted::hosted_service]` and `hosted::run!()`.
//!
//! The `.stderr` files hold rustc's exact output, which changes between compiler releases, so
//! the cases run only on the compiler they were blessed with. See README.md to re-bless.

use std::io::Write as _;
use std::process::Command;

/// The stable compiler the `.stderr` files were blessed with, as `(major, minor)`.
const BLESSED_WITH: (u32, u32) = (1, 95);

#[test]
fn ui() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .arg("--version")
        .output()
        .unwrap_or_else(|error| panic!("cannot run `{} --version`: {error}", rustc.display()));
    let version = String::from_utf8_lossy(&output.stdout);
    let version = version.trim();
    if stable_minor(version) != Some(BLESSED_WITH) {
        let (major, minor) = BLESSED_WITH;
        // Straight to the process's stderr: the test harness captures `eprintln!` of a passing
        // test, and this note must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "note: skipping the ui tests: their .stderr files were blessed with stable rustc \
             {major}.{minor}, and this is `{version}`.\n\
             To re-bless them for this compiler, run `TRYBUILD=overwrite cargo test -p hosted-ui-tests`, \
             review the .stderr diff, and update `BLESSED_WITH` in ui-tests/tests/ui.rs."
        );
        return;
    }

    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/**/*.rs");
    cases.pass("tests/ui/pass/**/*.rs");
}

/// `(major, minor)` of a stable `rustc --version` line such as `rustc 1.95.0 (59807616e 2026-04-14)`;
/// `None` for beta and nightly compilers, whose diagnostics may differ.
fn stable_minor(version: &str) -> Option<(u32, u32)> {
    let number = version.strip_prefix("rustc ")?.split_whitespace().next()?;
    if number.contains('-') {
        return None;
    }
    let mut parts = number.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[test]
fn versions_are_read() {
    assert_eq!(
        stable_minor("rustc 1.95.0 (59807616e 2026-04-14)"),
        Some((1, 95))
    );
    assert_eq!(stable_minor("rustc 1.96.1"), Some((1, 96)));
    assert_eq!(stable_minor("rustc 1.97.0-nightly (abc 2026-05-01)"), None);
    assert_eq!(stable_minor("rustc 1.96.0-beta.3"), None);
    assert_eq!(stable_minor("garbage"), None);
}

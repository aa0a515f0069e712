//! Depends on `linked-services` but never names it: shows what the linker does then.
fn main() {
    hosted::run!();
}

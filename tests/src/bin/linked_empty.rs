//! Links `linked-services`, which registers a service, and `anyhow`, which registers nothing:
//! as a library the linker dropped, `anyhow` must be reported (`--check` fails, `--list` and
//! startup warn).
fn main() {
    hosted::run!(link = [linked_services, anyhow]);
}

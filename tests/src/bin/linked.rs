//! Links `linked-services` through `run!`: its service must be found.
fn main() {
    hosted::run!(link = [linked_services]);
}

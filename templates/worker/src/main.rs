//! `{{project-name}}`: runs the services of the library until SIGTERM or Ctrl+C.

fn main() {
    hosted::run!(link = [{{crate_name}}]);
}

//! Errors the host reports: problems found while building it, and failures of running services.

use crate::registry::Problem;

/// The exit code of a process stopped by bad configuration: `EX_CONFIG` from `sysexits.h`.
pub const EXIT_CONFIG: u8 = 78;

/// The host could not be built: every problem found, reported together.
///
/// Nothing has started when this is returned.
#[derive(Debug, thiserror::Error)]
#[error("{}", render(.problems))]
pub struct BuildError {
    problems: Vec<Problem>,
}

impl BuildError {
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        Self { problems }
    }

    /// The problems, in the order they were found.
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The exit code `run!()` gives this error: 78 (`EX_CONFIG`) when configuration is at fault,
    /// 1 otherwise.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        if self.problems.iter().any(|problem| {
            matches!(
                problem,
                Problem::Config { .. } | Problem::ConfigConflict { .. }
            )
        }) {
            EXIT_CONFIG
        } else {
            1
        }
    }
}

fn render(problems: &[Problem]) -> String {
    let mut text = format!(
        "the host cannot start: {} problem{} found",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for problem in problems {
        text.push_str("\n  - ");
        text.push_str(&problem.to_string());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::SourceLocation;

    #[test]
    fn build_errors_list_every_problem() {
        let error = BuildError::new(vec![
            Problem::OrderCycle {
                path: vec!["a".into(), "b".into(), "a".into()],
            },
            Problem::DuplicateService {
                name: "x".into(),
                sources: vec![
                    Some(SourceLocation {
                        file: "src/a.rs",
                        line: 3,
                    }),
                    None,
                ],
            },
        ]);
        assert_eq!(
            error.to_string(),
            "the host cannot start: 2 problems found\n  \
             - services start after each other in a circle: a -> b -> a\n  \
             - two services are named `x` (declared at src/a.rs:3); give one of them another `name`"
        );
    }
}

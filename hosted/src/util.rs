//! Small helpers shared by the runtime's modules.

use std::any::Any;
use std::error::Error;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The message a panic carried, as far as it can be told.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// An error and its chain of sources on one line: `outer: middle: inner`.
pub(crate) fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // anyhow and others sometimes repeat the cause in the outer message.
        if !line.ends_with(&cause_text) {
            let _ = write!(line, ": {cause_text}");
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[test]
    fn chains_are_joined_with_colons() {
        assert_eq!(error_chain(&Outer(Inner)), "outer: inner");
    }

    #[test]
    fn anyhow_contexts_are_kept() {
        let error: crate::BoxError = anyhow::anyhow!("disk full").context("saving").into();
        assert_eq!(error_chain(error.as_ref()), "saving: disk full");
    }

    #[test]
    fn panic_payloads_are_read() {
        let payload = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(payload.as_ref()), "boom 1");
        let payload = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(
            panic_message(payload.as_ref()),
            "a panic with a non-string payload"
        );
    }
}

//! Collecting every mistake of one invocation, so the user sees them all at once.

use std::fmt::Display;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;

/// The mistakes found so far. It must be consumed with [`Errors::finish`]: dropping it unchecked
/// is a bug in this crate, caught by a panic in debug builds of the tests.
#[derive(Default)]
pub(crate) struct Errors {
    found: Option<syn::Error>,
    finished: bool,
}

impl Errors {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.found {
            Some(found) => found.combine(error),
            None => self.found = Some(error),
        }
    }

    /// An error at one token.
    pub(crate) fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// An error spanning the tokens of `node`.
    pub(crate) fn spanned(&mut self, node: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(node.into_token_stream(), message));
    }

    /// Keeps the value of a fallible step, recording its error.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    /// Every mistake as one error, or `Ok` when there was none.
    pub(crate) fn finish(mut self) -> syn::Result<()> {
        self.finished = true;
        self.found.take().map_or(Ok(()), Err)
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        if !self.finished && !std::thread::panicking() {
            debug_assert!(
                false,
                "`Errors` dropped without `finish`: a mistake could be lost"
            );
        }
    }
}

/// The tokens to emit when an invocation is wrong: the mistakes, then the user's item unchanged
/// (plus whatever stubs keep other code compiling), so one mistake does not cascade into others.
pub(crate) fn with_item(error: &syn::Error, item: impl ToTokens) -> TokenStream {
    let mut tokens = error.to_compile_error();
    item.to_tokens(&mut tokens);
    tokens
}

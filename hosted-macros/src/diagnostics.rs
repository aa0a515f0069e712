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

/// The attributes of this crate that give an item its role; an item takes one.
const ROLES: &[&str] = &[
    "hosted_service",
    "timed",
    "queued",
    "singleton",
    "scoped",
    "transient",
];

/// Expands `item` under `attribute`, first taking out any other of this crate's attributes
/// written below it on the same item, each reported as a mistake with the fix: two would
/// register twice under one name, and rustc's own errors about that name the hidden items.
pub(crate) fn one_role(
    attribute: &str,
    item: TokenStream,
    expand: impl FnOnce(TokenStream) -> TokenStream,
) -> TokenStream {
    let mut kept = TokenStream::new();
    let mut errors: Option<syn::Error> = None;
    let mut tokens = item.into_iter().peekable();
    while let Some(token) = tokens.next() {
        let proc_macro2::TokenTree::Punct(pound) = &token else {
            kept.extend([token]);
            break;
        };
        if pound.as_char() != '#' {
            kept.extend([token]);
            break;
        }
        let Some(proc_macro2::TokenTree::Group(group)) = tokens.peek().cloned() else {
            kept.extend([token]);
            break;
        };
        tokens.next();
        match role_of(&group) {
            Some(other) => {
                let error = syn::Error::new(group.span(), one_role_message(attribute, &other));
                match &mut errors {
                    Some(errors) => errors.combine(error),
                    None => errors = Some(error),
                }
            }
            None => kept.extend([token, proc_macro2::TokenTree::Group(group)]),
        }
    }
    kept.extend(tokens);
    let mut expanded = errors
        .map(|error| error.to_compile_error())
        .unwrap_or_default();
    expanded.extend(expand(kept));
    expanded
}

/// The role an attribute `[path(...)]` gives, when it is one of this crate's: `timed` or
/// `hosted::timed`.
fn role_of(group: &proc_macro2::Group) -> Option<String> {
    if group.delimiter() != proc_macro2::Delimiter::Bracket {
        return None;
    }
    let path: Vec<String> = group
        .stream()
        .into_iter()
        .take_while(|token| !matches!(token, proc_macro2::TokenTree::Group(_)))
        .filter_map(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => Some(ident.to_string()),
            _ => None,
        })
        .collect();
    let last = path.last()?;
    let ours = path.len() == 1 || (path.len() == 2 && path[0] == "hosted");
    (ours && ROLES.contains(&last.as_str())).then(|| last.clone())
}

fn one_role_message(attribute: &str, other: &str) -> String {
    let lifetimes = ["singleton", "scoped", "transient"];
    if attribute == other {
        return match attribute {
            "timed" => "one `#[timed]` per function: for two schedules, write two functions \
                        (both can call one shared `async fn`)"
                .to_owned(),
            "queued" => {
                "one `#[queued]` per function: for two queues, write two functions".to_owned()
            }
            _ => format!("`#[{attribute}]` is written twice on this item; keep one"),
        };
    }
    if lifetimes.contains(&attribute) && lifetimes.contains(&other) {
        return format!(
            "one service lifetime per type: `#[{attribute}]` and `#[{other}]` cannot both apply; keep one"
        );
    }
    if attribute == "hosted_service" && other == "singleton"
        || attribute == "singleton" && other == "hosted_service"
    {
        return "a `#[hosted_service]` type is already registered as a singleton (injectable as \
                `Arc<T>`): remove `#[singleton]`"
            .to_owned();
    }
    format!(
        "one hosted attribute per item: `#[{attribute}]` and `#[{other}]` cannot both apply; \
         write a second item for the second role"
    )
}

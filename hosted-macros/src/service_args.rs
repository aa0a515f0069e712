//! The arguments every service attribute shares: `name`, `order`, `after`, the failure policy
//! and `crate`.

use std::time::Duration;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Expr, ExprArray, Ident, LitStr};

use crate::args::Args;
use crate::diagnostics::Errors;
use crate::{duration, values};

/// The keys this module reads.
pub(crate) const KEYS: &[&str] = &[
    "name",
    "order",
    "after",
    "on_failure",
    "max_restarts",
    "backoff",
    "max_backoff",
    "crate",
];

const POLICIES: &[&str] = &["stop", "ignore", "restart"];
const RESTART_KEYS: &[&str] = &["max_restarts", "backoff", "max_backoff"];
/// `RestartPolicy::DEFAULT`'s ceiling, for checking a lone `backoff` against it.
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The shared arguments, checked.
pub(crate) struct ServiceArgs {
    pub(crate) name: Option<LitStr>,
    pub(crate) order: Option<i32>,
    pub(crate) after: Vec<After>,
    pub(crate) policy: Option<Policy>,
    pub(crate) krate: syn::Path,
}

/// A service this one starts after.
pub(crate) enum After {
    /// The path of another annotated item, checked by the compiler.
    Item(syn::Path),
    /// The name of a service, checked when the host is built.
    Named(LitStr),
}

pub(crate) enum Policy {
    Stop,
    Ignore,
    Restart {
        max_restarts: Option<u32>,
        backoff: Option<Duration>,
        max_backoff: Option<Duration>,
    },
}

impl ServiceArgs {
    /// Reports `after` naming the item itself, which could never start.
    pub(crate) fn refuse_after_self(&self, ident: &Ident, errors: &mut Errors) {
        for after in &self.after {
            if let After::Item(path) = after {
                let segments: Vec<_> = path.segments.iter().map(|segment| &segment.ident).collect();
                let itself = match segments.as_slice() {
                    [only] => *only == ident,
                    [first, only] => *first == "self" && *only == ident,
                    _ => false,
                };
                if itself {
                    errors.spanned(
                        path,
                        format!("`{ident}` cannot start after itself; name another service, or remove `after`"),
                    );
                }
            }
        }
    }

    /// Takes the shared keys out of `args`.
    pub(crate) fn take(args: &mut Args, errors: &mut Errors) -> Self {
        let name = args
            .take("name")
            .and_then(|arg| errors.take(values::non_empty_string("name", &arg.value)));
        let order = args
            .take("order")
            .and_then(|arg| errors.take(values::i32("order", &arg.value)));
        let after = args
            .take("after")
            .map(|arg| after_list(&arg.value, errors))
            .unwrap_or_default();
        let krate = args
            .take("crate")
            .and_then(|arg| errors.take(values::crate_path(&arg.value)))
            .unwrap_or_else(|| syn::parse_quote!(::hosted));
        let policy = take_policy(args, errors);
        Self {
            name,
            order,
            after,
            policy,
            krate,
        }
    }

    /// The runtime's hidden module, as generated code names it.
    pub(crate) fn private(&self) -> TokenStream {
        let krate = &self.krate;
        quote!(#krate::__private)
    }

    /// The expression of the service's name: the `name` argument, or the item's path.
    pub(crate) fn name_expr(&self, item: &Ident) -> TokenStream {
        if let Some(name) = &self.name {
            quote!(#name)
        } else {
            let item = item.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #item))
        }
    }

    /// The builder calls that apply the arguments to a `ServiceDescriptor` expression, naming the
    /// runtime's hidden module `private`.
    pub(crate) fn descriptor_calls(&self, private: &TokenStream) -> TokenStream {
        let mut calls = TokenStream::new();
        if let Some(order) = self.order {
            calls.extend(quote!(.order(#order)));
        }
        for after in &self.after {
            calls.extend(match after {
                After::Item(path) => after_item(private, path),
                After::Named(name) => quote!(.after(#name)),
            });
        }
        if let Some(policy) = &self.policy {
            let policy = match policy {
                Policy::Stop => quote!(#private::FailurePolicy::StopHost),
                Policy::Ignore => quote!(#private::FailurePolicy::Ignore),
                Policy::Restart {
                    max_restarts,
                    backoff,
                    max_backoff,
                } => {
                    let mut restart = quote!(#private::RestartPolicy::new());
                    if let Some(max) = max_restarts {
                        restart.extend(quote!(.with_max_restarts(#max)));
                    }
                    if let Some(backoff) = backoff {
                        let backoff = duration::constructor(*backoff);
                        restart.extend(quote!(.with_backoff(#backoff)));
                    }
                    if let Some(max) = max_backoff {
                        let max = duration::constructor(*max);
                        restart.extend(quote!(.with_max_backoff(#max)));
                    }
                    quote!(#private::FailurePolicy::Restart(#restart))
                }
            };
            calls.extend(quote!(.on_failure(#policy)));
        }
        calls
    }
}

/// The name of the annotated item at `path`, checked by the compiler. The path is imported under
/// a hidden name in an inner block, and an outer block names the runtime's fallback type the
/// same way: a path with a marker type (an annotated item) shadows the fallback, and a path to a
/// plain function has none, so rustc finds the fallback and reports "not a hosted service" at
/// the user's token rather than a name-resolution error about the hidden marker. A path that
/// names nothing is rustc's one unresolved-import error, at the path (a failed import hides the
/// fallback, so nothing else is reported).
fn after_item(private: &TokenStream, path: &syn::Path) -> TokenStream {
    // At the last segment, the item's name: `path.span()` is only the first segment's on stable.
    let span = path
        .segments
        .last()
        .map_or_else(|| path.span(), |segment| segment.ident.span());
    let target = quote_spanned!(span=> __hosted_target);
    let import = quote_spanned!(span=> use #path as #target;);
    let key = quote_spanned!(span=> <#target as #private::ServiceKey>::NAME);
    quote! {
        .after({
            #[allow(non_camel_case_types, reason = "the name `after` looks the path up under")]
            type __hosted_target = #private::NotAHostedService;
            {
                #[allow(unused_imports, reason = "`after` reads one namespace of the path")]
                #import
                #key
            }
        })
    }
}

fn after_list(value: &Expr, errors: &mut Errors) -> Vec<After> {
    let one = |value: &Expr, errors: &mut Errors| match value {
        Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => {
            Some(After::Item(path.path.clone()))
        }
        Expr::Lit(_) => errors
            .take(values::non_empty_string("after", value))
            .map(After::Named),
        other => {
            errors.spanned(
                other,
                "expected the path of a service (`after = database`), a service name \
                 (`after = \"database\"`) or a list of them (`after = [database, cache]`)",
            );
            None
        }
    };
    match value {
        Expr::Array(ExprArray { elems, .. }) => {
            if elems.is_empty() {
                errors.spanned(value, "`after` lists no service; remove it or name one");
            }
            elems
                .iter()
                .filter_map(|element| one(element, errors))
                .collect()
        }
        other => one(other, errors).into_iter().collect(),
    }
}

fn take_policy(args: &mut Args, errors: &mut Errors) -> Option<Policy> {
    let chosen = args
        .take("on_failure")
        .and_then(|arg| errors.take(values::choice("on_failure", &arg.value, POLICIES)));
    let max_restarts = args.take("max_restarts");
    let backoff = args.take("backoff");
    let max_backoff = args.take("max_backoff");
    let restarting = matches!(chosen, Some(("restart", _)));
    if !restarting {
        for (key, arg) in RESTART_KEYS
            .iter()
            .zip([&max_restarts, &backoff, &max_backoff])
        {
            if let Some(arg) = arg {
                errors.at(
                    arg.key.span(),
                    format!("`{key}` applies only to restarting services; add `on_failure = \"restart\"`"),
                );
            }
        }
    }
    let (word, _) = chosen?;
    Some(match word {
        "stop" => Policy::Stop,
        "ignore" => Policy::Ignore,
        _ => {
            let max_restarts =
                max_restarts.and_then(|arg| errors.take(values::u32("max_restarts", &arg.value)));
            let backoff =
                backoff.and_then(|arg| errors.take(values::duration("backoff", &arg.value)));
            let max_backoff = max_backoff
                .and_then(|arg| errors.take(values::duration("max_backoff", &arg.value)));
            if let Some((ceiling, literal)) = &max_backoff
                && ceiling.is_zero()
            {
                errors.at(literal.span(), "`max_backoff` must be greater than zero");
            }
            if let Some((first, literal)) = &backoff {
                let ceiling = max_backoff
                    .as_ref()
                    .map_or(DEFAULT_MAX_BACKOFF, |(max, _)| *max);
                if *first > ceiling {
                    errors.at(
                        literal.span(),
                        format!(
                            "`backoff` ({}) is longer than `max_backoff` ({}); lower it or raise `max_backoff`",
                            literal.value(),
                            max_backoff.as_ref().map_or_else(|| "30s by default".to_owned(), |(_, max)| max.value()),
                        ),
                    );
                }
            }
            Policy::Restart {
                max_restarts,
                backoff: backoff.map(|(value, _)| value),
                max_backoff: max_backoff.map(|(value, _)| value),
            }
        }
    })
}

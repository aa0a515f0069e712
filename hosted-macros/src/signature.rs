//! The shape of an annotated function: checks shared by every attribute that runs a function,
//! and the parameters the generated code injects.

use quote::ToTokens as _;
use syn::{FnArg, Ident, Pat, ReturnType, Signature, Type};

use crate::diagnostics::Errors;

/// An annotated function, as the generated code calls it.
pub(crate) struct HostedFn {
    pub(crate) ident: Ident,
    pub(crate) params: Vec<Param>,
    /// The declared return type; `None` for `()`.
    pub(crate) output: Option<Type>,
    /// Whether it takes `self`, so sits in an impl or a trait rather than a module.
    pub(crate) is_method: bool,
}

/// One parameter: its name for messages and local variables, and its type.
pub(crate) struct Param {
    pub(crate) label: String,
    pub(crate) ty: Type,
}

/// Checks that `sig` is a plain `async fn` the host can call, recording each mistake.
pub(crate) fn check(sig: &Signature, attribute: &str, errors: &mut Errors) -> HostedFn {
    if sig.asyncness.is_none() {
        errors.at(
            sig.fn_token.span,
            format!("`#[{attribute}]` requires an `async fn`; the host runs its body as a task"),
        );
    }
    check_sync_or_async(sig, attribute, errors)
}

/// Checks that `sig` is a plain function, `async` or not, the host can call.
pub(crate) fn check_sync_or_async(
    sig: &Signature,
    attribute: &str,
    errors: &mut Errors,
) -> HostedFn {
    if let Some(constness) = &sig.constness {
        errors.at(
            constness.span,
            format!("`#[{attribute}]` cannot be used on a `const fn`"),
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.at(
            unsafety.span,
            format!("`#[{attribute}]` cannot be used on an `unsafe fn`: the host could not uphold its contract"),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(
            abi,
            format!("`#[{attribute}]` cannot be used on an `extern` function"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(
            variadic,
            format!("`#[{attribute}]` cannot be used on a variadic function"),
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        let generics = if sig.generics.params.is_empty() {
            sig.generics.where_clause.to_token_stream()
        } else {
            sig.generics.to_token_stream()
        };
        errors.spanned(
            generics,
            format!("`#[{attribute}]` functions cannot be generic: the host calls them with concrete types"),
        );
    }

    let mut params = Vec::new();
    for (position, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(receiver) => errors.spanned(
                receiver,
                format!(
                    "`#[{attribute}]` functions cannot take `self`: the host calls them without a value; \
                     make it a free function, or implement `HostedService` for the type"
                ),
            ),
            FnArg::Typed(typed) => {
                if let Some((ty, fix)) = unsupported_type(&typed.ty) {
                    errors.spanned(ty, fix);
                    continue;
                }
                let label = match typed.pat.as_ref() {
                    Pat::Ident(binding) => binding.ident.to_string(),
                    _ => format!("arg{position}"),
                };
                params.push(Param {
                    label,
                    ty: (*typed.ty).clone(),
                });
            }
        }
    }

    let output = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => {
            if let Type::ImplTrait(_) = ty.as_ref() {
                errors.spanned(
                    ty,
                    "name the return type; `impl Trait` return types are not supported",
                );
            }
            Some((**ty).clone())
        }
    };
    HostedFn {
        ident: sig.ident.clone(),
        params,
        output,
        is_method: sig.receiver().is_some(),
    }
}

/// Parameter types the host can never inject: the type to point at, and the fix.
fn unsupported_type(ty: &Type) -> Option<(&Type, &'static str)> {
    match ty {
        Type::Reference(_) => Some((
            ty,
            "parameters are injected by value: take `Arc<T>` or an owned value instead of a reference",
        )),
        Type::ImplTrait(_) => Some((
            ty,
            "parameters cannot be `impl Trait`: name the type to inject",
        )),
        Type::Infer(_) => Some((ty, "name the parameter's type; `_` cannot be injected")),
        Type::Paren(inner) => unsupported_type(&inner.elem),
        Type::Group(inner) => unsupported_type(&inner.elem),
        _ => None,
    }
}

/// Reports a `Tick` parameter outside a timer: only a tick has one to give, so it would fail at
/// every run instead of at build time.
pub(crate) fn refuse_tick(function: &HostedFn, attribute: &str, errors: &mut Errors) {
    for param in &function.params {
        let Type::Path(path) = &param.ty else {
            continue;
        };
        let Some(last) = path.path.segments.last() else {
            continue;
        };
        if last.ident == "Tick" && last.arguments.is_none() {
            errors.spanned(
                &param.ty,
                format!(
                    "`Tick` is given only to `#[timed]` functions, one per tick; a `#[{attribute}]` \
                     function has none: remove `{}`, or make the function `#[timed(every = \"...\")]`",
                    param.label
                ),
            );
        }
    }
}

//! Reading argument values: each reader names the expected form in its error.

use std::time::Duration;

use proc_macro2::Span;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, ExprUnary, Lit, LitStr, UnOp};

use crate::duration;

fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => literal(&group.expr),
        _ => None,
    }
}

/// A string literal.
pub(crate) fn string(key: &str, value: &Expr) -> syn::Result<LitStr> {
    match literal(value) {
        Some(Lit::Str(text)) => Ok(text.clone()),
        _ => Err(syn::Error::new(
            value.span(),
            format!("expected a string literal for `{key}`, like `{key} = \"...\"`"),
        )),
    }
}

/// A non-empty string literal.
pub(crate) fn non_empty_string(key: &str, value: &Expr) -> syn::Result<LitStr> {
    let text = string(key, value)?;
    if text.value().trim().is_empty() {
        return Err(syn::Error::new(
            text.span(),
            format!("`{key}` cannot be empty"),
        ));
    }
    Ok(text)
}

/// An integer literal, possibly negative, that fits an `i32`.
pub(crate) fn i32(key: &str, value: &Expr) -> syn::Result<i32> {
    let (negative, inner) = match value {
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => (true, expr.as_ref()),
        other => (false, other),
    };
    let expected = || {
        syn::Error::new(
            value.span(),
            format!("expected an integer for `{key}`, like `{key} = 10` or `{key} = -5`"),
        )
    };
    let Some(Lit::Int(int)) = literal(inner) else {
        return Err(quoted_number(key, inner).unwrap_or_else(expected));
    };
    let magnitude: i64 = int.base10_parse().map_err(|_| expected())?;
    let signed = if negative { -magnitude } else { magnitude };
    i32::try_from(signed).map_err(|_| {
        syn::Error::new(
            value.span(),
            format!(
                "`{key}` must fit in an `i32` ({} to {})",
                i32::MIN,
                i32::MAX
            ),
        )
    })
}

/// A non-negative integer literal that fits a `u32`.
pub(crate) fn u32(key: &str, value: &Expr) -> syn::Result<u32> {
    let expected = || {
        syn::Error::new(
            value.span(),
            format!("expected a non-negative integer for `{key}`, like `{key} = 5`"),
        )
    };
    let Some(Lit::Int(int)) = literal(value) else {
        return Err(quoted_number(key, value).unwrap_or_else(expected));
    };
    int.base10_parse().map_err(|_| expected())
}

/// The error for a number written as a string, `capacity = "100"`, which reads as a mistake of
/// quotes rather than of value.
fn quoted_number(key: &str, value: &Expr) -> Option<syn::Error> {
    let Some(Lit::Str(text)) = literal(value) else {
        return None;
    };
    let number = text.value();
    let number = number.trim();
    number.parse::<i64>().ok().map(|_| {
        syn::Error::new(
            text.span(),
            format!("`{key}` takes a number, not a string: drop the quotes, `{key} = {number}`"),
        )
    })
}

/// A boolean literal.
pub(crate) fn bool(key: &str, value: &Expr) -> syn::Result<bool> {
    match literal(value) {
        Some(Lit::Bool(flag)) => Ok(flag.value),
        _ => Err(syn::Error::new(
            value.span(),
            format!("expected `true` or `false` for `{key}`"),
        )),
    }
}

/// A duration literal such as `"5s"`, with the literal kept for later checks.
pub(crate) fn duration(key: &str, value: &Expr) -> syn::Result<(Duration, LitStr)> {
    let Some(Lit::Str(text)) = literal(value) else {
        let example = match literal(value) {
            Some(Lit::Int(int)) => format!("\"{}s\"", int.base10_digits()),
            _ => "\"5s\"".to_owned(),
        };
        let unit = if matches!(literal(value), Some(Lit::Int(_))) {
            "; a number alone has no unit"
        } else {
            ""
        };
        return Err(syn::Error::new(
            value.span(),
            format!("expected a duration string for `{key}`, like `{key} = {example}`{unit}"),
        ));
    };
    duration::parse(&text.value())
        .map(|parsed| (parsed, text.clone()))
        .map_err(|message| syn::Error::new(text.span(), message))
}

/// One of a fixed set of words, written as a string literal.
pub(crate) fn choice<'a>(
    key: &str,
    value: &Expr,
    choices: &[&'a str],
) -> syn::Result<(&'a str, Span)> {
    let listed = choices
        .iter()
        .map(|choice| format!("`\"{choice}\"`"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = string(key, value).map_err(|_| {
        // `on_failure = restart`: the right word, without its quotes.
        let unquoted = match value {
            Expr::Path(path) => path
                .path
                .get_ident()
                .filter(|word| choices.iter().any(|choice| *word == choice)),
            _ => None,
        };
        let message = match unquoted {
            Some(word) => format!("expected a string for `{key}`: write `{key} = \"{word}\"`"),
            None => format!("expected one of {listed} for `{key}`"),
        };
        syn::Error::new(value.span(), message)
    })?;
    let written = text.value();
    choices
        .iter()
        .find(|choice| **choice == written)
        .map(|choice| (*choice, text.span()))
        .ok_or_else(|| {
            syn::Error::new(
                text.span(),
                format!("unknown value `\"{written}\"` for `{key}`; expected one of {listed}"),
            )
        })
}

/// The `crate = "path"` argument: the path generated code uses instead of `::hosted`.
pub(crate) fn crate_path(value: &Expr) -> syn::Result<syn::Path> {
    let text = string("crate", value)?;
    text.parse::<syn::Path>().map_err(|_| {
        syn::Error::new(
            text.span(),
            "expected a path for `crate`, like `crate = \"::my_facade::hosted\"`",
        )
    })
}

/// A type, as `as = dyn Mailer` gives it.
pub(crate) fn type_value(key: &str, value: &Expr) -> syn::Result<syn::Type> {
    let tokens = match value {
        Expr::Verbatim(tokens) => tokens.clone(),
        other => quote::ToTokens::into_token_stream(other),
    };
    syn::parse2(tokens).map_err(|_| {
        syn::Error::new(
            value.span(),
            format!("expected a type for `{key}`, like `{key} = dyn Mailer`"),
        )
    })
}

/// Tokens as a person writes them: `hosted::Tick`, `Vec<u8>`, not `hosted :: Tick`.
pub(crate) fn as_written(tokens: &impl quote::ToTokens) -> String {
    let spaced = tokens.to_token_stream().to_string();
    [
        (" :: ", "::"),
        (":: ", "::"),
        (" < ", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& ", "&"),
    ]
    .iter()
    .fold(spaced, |text, (from, to)| text.replace(from, to))
}

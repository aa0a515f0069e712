//! Attribute arguments: `key = value` pairs, each key given at most once, unknown keys reported
//! with the list of valid ones.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;

use proc_macro2::TokenStream;
use quote::ToTokens as _;
use syn::ext::IdentExt as _;
use syn::parse::{ParseStream, Parser as _};
use syn::{Expr, Ident, Token};

use crate::diagnostics::Errors;
use crate::edit_distance::edit_distance;

/// Keys that may be written alone, for `key = true`.
const FLAGS: &[&str] = &["durable", "once_per_cluster"];

/// The attribute whose arguments are read, for messages: its name, its keys, and what a lone
/// literal most likely meant.
#[derive(Clone, Copy)]
pub(crate) struct Attribute {
    /// As the user writes it: `timed`, `hosted_service`, `run!`.
    pub(crate) name: &'static str,
    /// How a positional literal was probably meant: `"5s"` → `every = "5s"`.
    pub(crate) positional: fn(&syn::Lit) -> Option<&'static str>,
}

impl Attribute {
    /// `#[name]` or `name!`, as it is written.
    fn written(self) -> String {
        if self.name.ends_with('!') {
            format!("`{}()`", self.name)
        } else {
            format!("`#[{}]`", self.name)
        }
    }
}

/// Every attribute's own keys, to tell a user who gave one attribute's argument to another which
/// attribute takes it.
const OWNERS: &[(&str, &[&str])] = &[
    ("`#[timed]`", crate::timed::TIMER_KEYS),
    ("`#[queued]`", crate::queued::QUEUE_KEYS),
    (
        "`#[singleton]`, `#[scoped]` and `#[transient]`",
        crate::service_lifetime::KEYS,
    ),
    ("the service attributes", crate::service_args::KEYS),
    ("`hosted::run!()`", crate::run::KEYS),
];

/// One `key = value` argument, kept as written.
pub(crate) struct Arg {
    pub(crate) key: Ident,
    pub(crate) value: Expr,
}

impl Arg {
    fn parse(input: ParseStream<'_>, attribute: Attribute) -> syn::Result<Self> {
        if input.peek(syn::Lit) {
            let literal: syn::Lit = input.parse()?;
            let mut message = "expected `name = value` arguments".to_owned();
            if let Some(key) = (attribute.positional)(&literal) {
                let written = literal.to_token_stream().to_string();
                let _ = write!(message, "; did you mean `{key} = {written}`?");
            }
            return Err(syn::Error::new(literal.span(), message));
        }
        // `crate` is a keyword but a valid key here, as in serde's `crate = "..."`.
        let key = Ident::parse_any(input).map_err(|error| {
            syn::Error::new(
                error.span(),
                format!(
                    "expected `name = value` arguments to {}",
                    attribute.written()
                ),
            )
        })?;
        if FLAGS.contains(&key.to_string().as_str()) && !input.peek(Token![=]) {
            // A flag written alone means `flag = true`.
            let value = syn::LitBool::new(true, key.span());
            return Ok(Self {
                key,
                value: Expr::Lit(syn::ExprLit {
                    attrs: Vec::new(),
                    lit: syn::Lit::Bool(value),
                }),
            });
        }
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `{key} = ...`: arguments are written as `name = value`"),
            ));
        }
        input.parse::<Token![=]>()?;
        // `as = dyn Mailer` names a type, which does not parse as an expression.
        let value = if key == "as" {
            let start = input.span();
            let ty = input.parse::<syn::Type>().map_err(|_| {
                syn::Error::new(start, "expected a type for `as`, like `as = dyn Mailer`")
            })?;
            Expr::Verbatim(ty.into_token_stream())
        } else {
            input.parse()?
        };
        Ok(Self { key, value })
    }
}

/// `key = value, ...`, with a message naming the mistake when two arguments run together.
fn parse_list(input: ParseStream<'_>, attribute: Attribute) -> syn::Result<Vec<Arg>> {
    let mut list = Vec::new();
    while !input.is_empty() {
        list.push(Arg::parse(input, attribute)?);
        if input.is_empty() {
            break;
        }
        if !input.peek(Token![,]) {
            return Err(input.error(format!(
                "expected `,` between the arguments of {}",
                attribute.written()
            )));
        }
        input.parse::<Token![,]>()?;
    }
    Ok(list)
}

/// The arguments of one invocation, by key, after the set-once and known-key checks.
pub(crate) struct Args {
    by_key: HashMap<String, Arg>,
}

impl Args {
    /// Parses `tokens` as `key = value, ...` with keys from `valid`. Duplicates and unknown keys
    /// are recorded in `errors` and left out.
    pub(crate) fn parse(
        tokens: TokenStream,
        attribute: Attribute,
        valid: &[&str],
        errors: &mut Errors,
    ) -> Self {
        let mut by_key: HashMap<String, Arg> = HashMap::new();
        let parser = |input: ParseStream<'_>| parse_list(input, attribute);
        let Some(list) = errors.take(parser.parse2(tokens)) else {
            return Self { by_key };
        };
        for arg in list {
            let key = arg.key.unraw().to_string();
            if !valid.contains(&key.as_str()) {
                errors.at(arg.key.span(), unknown_key_message(&key, attribute, valid));
                continue;
            }
            match by_key.entry(key) {
                Entry::Vacant(entry) => {
                    entry.insert(arg);
                }
                // One error, at the repeat: a second one at the first occurrence would read as a
                // second mistake.
                Entry::Occupied(entry) => errors.at(
                    arg.key.span(),
                    format!(
                        "duplicate argument `{}`; give each argument once",
                        entry.key()
                    ),
                ),
            }
        }
        Self { by_key }
    }

    /// Removes and returns the argument with this key.
    pub(crate) fn take(&mut self, key: &str) -> Option<Arg> {
        self.by_key.remove(key)
    }
}

fn unknown_key_message(key: &str, attribute: Attribute, valid: &[&str]) -> String {
    let list = valid
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(guess) = closest(key, valid.iter().copied()) {
        return format!("unknown argument `{key}`; did you mean `{guess}`? expected one of {list}");
    }
    let owner = OWNERS
        .iter()
        .find(|(_, keys)| keys.contains(&key))
        .map(|(owner, _)| *owner);
    if let Some(owner) = owner {
        return format!(
            "`{key}` is an argument of {owner}, not of {}; expected one of {list}",
            attribute.written()
        );
    }
    let sibling = OWNERS
        .iter()
        .find_map(|(owner, keys)| closest(key, keys.iter().copied()).map(|guess| (owner, guess)));
    if let Some((owner, guess)) = sibling {
        return format!(
            "unknown argument `{key}`; `{guess}` is an argument of {owner}, not of {}; expected one of {list}",
            attribute.written()
        );
    }
    format!("unknown argument `{key}`; expected one of {list}")
}

/// The candidate a typed key most likely meant: the same ignoring case and underscores, one
/// that starts with it (`log` → `logging`, `on_fail` → `on_failure`), or one within two edits.
fn closest<'a>(typed: &str, candidates: impl Iterator<Item = &'a str> + Clone) -> Option<&'a str> {
    let normal = |key: &str| key.to_ascii_lowercase().replace('_', "");
    let typed_normal = normal(typed);
    if let Some(same) = candidates
        .clone()
        .find(|candidate| normal(candidate) == typed_normal)
    {
        return Some(same);
    }
    // `log` → `logging`; `retry` → `retries`: all but the typed key's last letter agree.
    let stem = &typed_normal[..typed_normal.len().saturating_sub(1)];
    if typed_normal.len() >= 3
        && let Some(longer) = candidates.clone().find(|candidate| {
            let candidate = normal(candidate);
            candidate.starts_with(&typed_normal) || (stem.len() >= 4 && candidate.starts_with(stem))
        })
    {
        return Some(longer);
    }
    let limit = if typed_normal.len() <= 3 { 1 } else { 2 };
    candidates
        .map(|candidate| (edit_distance(&typed_normal, &normal(candidate)), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_keys_are_suggested() {
        let keys = ["name", "order", "on_failure", "retries", "logging"];
        let guess = |typed| closest(typed, keys.iter().copied());
        assert_eq!(guess("nmae"), Some("name"));
        assert_eq!(guess("nam"), Some("name"));
        assert_eq!(guess("names"), Some("name"));
        assert_eq!(guess("onfailure"), Some("on_failure"));
        assert_eq!(guess("onFailure"), Some("on_failure"));
        assert_eq!(guess("on_fail"), Some("on_failure"));
        assert_eq!(guess("ordr"), Some("order"));
        assert_eq!(guess("retry"), Some("retries"));
        assert_eq!(guess("log"), Some("logging"));
        assert_eq!(guess("zzz"), None);
        assert_eq!(guess("x"), None);
    }
}

//! Attribute arguments: `key = value` pairs, each key given at most once, unknown keys reported
//! with the list of valid ones.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;

use proc_macro2::TokenStream;
use quote::ToTokens as _;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream, Parser as _};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Token};

use crate::diagnostics::Errors;

/// Keys that may be written alone, for `key = true`.
const FLAGS: &[&str] = &["durable", "once_per_cluster"];

/// One `key = value` argument, kept as written.
pub(crate) struct Arg {
    pub(crate) key: Ident,
    pub(crate) value: Expr,
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `crate` is a keyword but a valid key here, as in serde's `crate = "..."`.
        let key = Ident::parse_any(input)?;
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
                format!("expected `{key} = ...`: arguments are written as `key = value`"),
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

/// The arguments of one invocation, by key, after the set-once and known-key checks.
pub(crate) struct Args {
    by_key: HashMap<String, Arg>,
}

impl Args {
    /// Parses `tokens` as `key = value, ...` with keys from `valid`. Duplicates and unknown keys
    /// are recorded in `errors` and left out.
    pub(crate) fn parse(tokens: TokenStream, valid: &[&str], errors: &mut Errors) -> Self {
        let mut by_key: HashMap<String, Arg> = HashMap::new();
        let Some(list) = errors.take(Punctuated::<Arg, Token![,]>::parse_terminated.parse2(tokens))
        else {
            return Self { by_key };
        };
        for arg in list {
            let key = arg.key.unraw().to_string();
            if !valid.contains(&key.as_str()) {
                errors.at(arg.key.span(), unknown_key_message(&key, valid));
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

fn unknown_key_message(key: &str, valid: &[&str]) -> String {
    let list = valid
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut message = format!("unknown argument `{key}`; expected one of {list}");
    if let Some(guess) = valid.iter().find(|candidate| is_near(key, candidate)) {
        let _ = write!(message, "; did you mean `{guess}`?");
    }
    message
}

/// Whether two keys differ by one edit or by an underscore, the typos worth a suggestion.
fn is_near(typed: &str, candidate: &str) -> bool {
    if typed.replace('_', "") == candidate.replace('_', "") {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (typed.chars().collect(), candidate.chars().collect());
    let (shorter, longer) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    match longer.len() - shorter.len() {
        0 => {
            let differing: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            differing.len() == 1
                || (differing.len() == 2
                    && differing[1] == differing[0] + 1
                    && a[differing[0]] == b[differing[1]]
                    && a[differing[1]] == b[differing[0]])
        }
        1 => (0..longer.len()).any(|skip| {
            longer
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != skip)
                .map(|(_, c)| c)
                .eq(shorter.iter())
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_keys_are_suggested() {
        assert!(is_near("nmae", "name"));
        assert!(is_near("nam", "name"));
        assert!(is_near("names", "name"));
        assert!(is_near("onfailure", "on_failure"));
        assert!(is_near("ordr", "order"));
        assert!(!is_near("zzz", "name"));
    }
}

//! `hosted::run!()`: the whole `main` of a hosted application.
//!
//! Accepts nothing, a closure that adjusts the host builder, or `key = value` arguments:
//! `link = [crate, ...]`, `configure = closure`, `logging = bool` and `crate = "path"`.

use proc_macro2::TokenStream;
use quote::{ToTokens as _, quote, quote_spanned};
use syn::{Expr, Ident};

use crate::args::{Args, Attribute};
use crate::diagnostics::Errors;
use crate::values;

pub(crate) const KEYS: &[&str] = &["link", "configure", "logging", "crate"];

struct RunModel {
    links: Vec<Ident>,
    configure: Option<Expr>,
    logging: bool,
    krate: syn::Path,
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let model = parse(input, &mut errors);
    match errors.finish() {
        Ok(()) => emit(&model),
        Err(error) => {
            // Still an expression of type `!`, so `fn main() { hosted::run!(...) }` type-checks
            // and only the real mistake is reported.
            let error = error.to_compile_error();
            quote!({ #error ::std::process::exit(1) })
        }
    }
}

fn parse(input: TokenStream, errors: &mut Errors) -> RunModel {
    let mut model = RunModel {
        links: Vec::new(),
        configure: None,
        logging: true,
        krate: syn::parse_quote!(::hosted),
    };
    if input.is_empty() {
        return model;
    }
    if !starts_with_key(&input) {
        // The short form: `hosted::run!(|host| host...)`.
        model.configure = errors.take(syn::parse::Parser::parse2(one_closure, input));
        return model;
    }
    let mut args = Args::parse(
        input,
        Attribute {
            name: "hosted::run!",
            positional: |_| None,
        },
        KEYS,
        errors,
    );
    if let Some(arg) = args.take("link") {
        model.links = link_list(&arg.value, errors);
    }
    model.configure = args.take("configure").map(|arg| arg.value);
    if let Some(arg) = args.take("logging") {
        model.logging = errors
            .take(values::bool("logging", &arg.value))
            .unwrap_or(true);
    }
    if let Some(arg) = args.take("crate")
        && let Some(path) = errors.take(values::crate_path(&arg.value))
    {
        model.krate = path;
    }
    model
}

/// The short form's one expression, with messages that say what the macro takes.
fn one_closure(input: syn::parse::ParseStream<'_>) -> syn::Result<Expr> {
    let expected = "expected `name = value` arguments (`link`, `configure`, `logging`, `crate`) \
                    or one closure that adjusts the builder, `hosted::run!(|host| host...)`";
    let expression: Expr = input
        .parse()
        .map_err(|error| syn::Error::new(error.span(), expected))?;
    if input.peek(syn::Token![,]) && !input.peek2(syn::parse::End) {
        return Err(input.error(
            "`hosted::run!()` takes one closure: to adjust the builder twice, chain the calls in \
             it, `|host| host.first(...).second(...)`",
        ));
    }
    input.parse::<Option<syn::Token![,]>>()?;
    if !input.is_empty() {
        return Err(input.error(expected));
    }
    Ok(expression)
}

/// Whether the input is `key = ...` rather than a closure or other expression.
fn starts_with_key(input: &TokenStream) -> bool {
    let mut tokens = input.clone().into_iter();
    matches!(
        (tokens.next(), tokens.next()),
        (Some(proc_macro2::TokenTree::Ident(_)), Some(proc_macro2::TokenTree::Punct(punct)))
            if punct.as_char() == '=' && !matches!(tokens.next(), Some(proc_macro2::TokenTree::Punct(next)) if next.as_char() == '=')
    )
}

fn link_list(value: &Expr, errors: &mut Errors) -> Vec<Ident> {
    let Expr::Array(array) = value else {
        let message = match value {
            Expr::Path(path) if path.qself.is_none() && path.path.get_ident().is_some() => {
                let name = path.path.to_token_stream();
                format!("`link` takes a list of crate names: write `link = [{name}]`")
            }
            _ => "expected a list of crate names for `link`, like `link = [billing, mailer]`"
                .to_owned(),
        };
        errors.spanned(value, message);
        return Vec::new();
    };
    array
        .elems
        .iter()
        .filter_map(|element| match element {
            Expr::Path(path) if path.qself.is_none() => {
                if let Some(ident) = path.path.get_ident() {
                    Some(ident.clone())
                } else {
                    errors.spanned(
                        element,
                        "expected a crate name, not a path: `link = [my_crate]`",
                    );
                    None
                }
            }
            other => {
                errors.spanned(
                    other,
                    "expected a crate name, like `link = [billing, mailer]`",
                );
                None
            }
        })
        .collect()
}

fn emit(model: &RunModel) -> TokenStream {
    let krate = &model.krate;
    let logging = model.logging;
    // `extern crate` makes rustc link a crate the binary never names otherwise, so the
    // services it registers before `main` are kept. Spanned at the name, so a crate that
    // is not a dependency is reported there.
    let links = model
        .links
        .iter()
        .map(|link| quote_spanned!(link.span()=> extern crate #link as _;));
    let names: Vec<String> = model.links.iter().map(ToString::to_string).collect();
    // Libraries the binary depends on that use `hosted` but are not in `link`: the linker may
    // have dropped them, which the host then reports.
    let unnamed = crate::lockfile::libraries_using_hosted()
        .into_iter()
        .filter(|library| !names.contains(library));
    let configure = model
        .configure
        .as_ref()
        .map_or_else(|| quote!(|host| host), |configure| quote!(#configure));
    quote! {
        {
            #(#links)*
            #krate::__private::run_main(
                #krate::__private::MainOptions {
                    logging: #logging,
                    links: &[#(#names),*],
                    unnamed: &[#(#unnamed),*],
                },
                #configure,
            )
        }
    }
}

//! `#[hosted::routes]`: a function whose routes the web server merges in, registered at link
//! time like a service.
//!
//! Parse (`crate = "path"`) → validate (a plain `fn` without parameters or generics that returns
//! something) → emit (the item unchanged, its call spanned at the return type, two `inventory`
//! items: the contribution and the `--list` table, and the server's registration).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::args::{Args, Attribute};
use crate::diagnostics::{Errors, with_item};
use crate::{submit, values};

const KEYS: &[&str] = &["crate"];

/// A checked `#[routes]` function.
struct RoutesFn {
    item: ItemFn,
    output: Box<Type>,
    krate: syn::Path,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let krate = parse(args, &mut errors);
    let Ok(parsed) = syn::parse2::<ItemFn>(item.clone()) else {
        // At the item's kind (`struct`, `impl`, ...): the part that is wrong.
        let at = syn::parse2::<syn::Item>(item.clone())
            .ok()
            .and_then(|parsed| item_keyword(&parsed))
            .unwrap_or_else(proc_macro2::Span::call_site);
        errors.push(syn::Error::new(
            at,
            "`#[hosted::routes]` goes on a function returning `hosted::web::Routes` or `axum::Router`",
        ));
        let error = errors.finish().unwrap_err();
        return with_item(&error, item);
    };
    let item = parsed;
    let output = validate(&item, &mut errors);
    match (errors.finish(), output) {
        (Ok(()), Some(output)) => emit(&RoutesFn {
            item,
            output,
            krate,
        }),
        (Err(error), _) => with_item(&error, item),
        (Ok(()), None) => unreachable!("a missing return type is reported"),
    }
}

/// The keyword that says what kind of item it is.
fn item_keyword(item: &syn::Item) -> Option<proc_macro2::Span> {
    Some(match item {
        syn::Item::Struct(item) => item.struct_token.span,
        syn::Item::Enum(item) => item.enum_token.span,
        syn::Item::Impl(item) => item.impl_token.span,
        syn::Item::Trait(item) => item.trait_token.span,
        syn::Item::Const(item) => item.const_token.span,
        syn::Item::Static(item) => item.static_token.span,
        syn::Item::Mod(item) => item.mod_token.span,
        syn::Item::Type(item) => item.type_token.span,
        _ => return None,
    })
}

fn parse(args: TokenStream, errors: &mut Errors) -> syn::Path {
    let mut args = Args::parse(
        args,
        Attribute {
            name: "hosted::routes",
            positional: |_| None,
        },
        KEYS,
        errors,
    );
    args.take("crate")
        .and_then(|arg| errors.take(values::crate_path(&arg.value)))
        .unwrap_or_else(|| syn::parse_quote!(::hosted))
}

fn validate(item: &ItemFn, errors: &mut Errors) -> Option<Box<Type>> {
    let signature = &item.sig;
    if let Some(asyncness) = signature.asyncness {
        errors.at(
            asyncness.span(),
            "a `#[hosted::routes]` function is not `async`: it builds the routes once, before the server starts; handlers are the `async fn`s",
        );
    }
    if !signature.generics.params.is_empty() {
        errors.spanned(
            &signature.generics,
            "a `#[hosted::routes]` function cannot be generic: the server calls it with no type to choose",
        );
    }
    for input in &signature.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.spanned(
                receiver,
                "a `#[hosted::routes]` function is a free function, not a method",
            ),
            FnArg::Typed(typed) => errors.spanned(
                typed,
                "a `#[hosted::routes]` function takes no parameters: handlers receive container values as `hosted::web::Injected<T>` extractors, per request",
            ),
        }
    }
    match &signature.output {
        ReturnType::Default => {
            errors.spanned(
                &signature.ident,
                "a `#[hosted::routes]` function returns its routes: add `-> hosted::web::Routes` (or `-> axum::Router`)",
            );
            None
        }
        ReturnType::Type(_, output) => Some(output.clone()),
    }
}

fn emit(model: &RoutesFn) -> TokenStream {
    let RoutesFn {
        item,
        output,
        krate,
    } = model;
    let private = quote!(#krate::__private);
    let ident = &item.sig.ident;
    let name = ident.to_string();
    // Spanned at the return type, so a function returning something else is one error there.
    let routes = quote_spanned! {output.span()=>
        #private::IntoRoutes::into_routes(#ident())
    };
    let registration =
        submit::registration(&private, &quote!(#private::register_discovered(registry);));
    quote! {
        #item

        const _: () = {
            fn __hosted_routes() -> #krate::web::Routes {
                #routes
            }

            #private::inventory::submit! {
                #private::RouteContribution::new(
                    ::core::concat!(::core::module_path!(), "::", #name),
                    ::core::file!(),
                    ::core::line!(),
                    __hosted_routes,
                )
            }

            #registration

            #private::inventory::submit! {
                #private::ListingHook::with_json("hosted::web::routes", #private::web_listing, #private::web_listing_json)
            }
        };
    }
}

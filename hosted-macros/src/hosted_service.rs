//! `#[hosted_service]`: on an `async fn`, a background service; on a struct implementing
//! `HostedService`, a service built from injected fields and shared as `Arc<T>`.
//!
//! Three phases: [`Args`] parses the arguments, `validate_*` checks them against the item into
//! a model, `emit_*` writes the tokens.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens as _, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Generics, Ident, Item, ItemFn, ItemStruct};

use crate::args::{Args, Attribute};
use crate::construct::StructFields;
use crate::diagnostics::{Errors, with_item};
use crate::injection::ALLOW_QUALIFIED;
use crate::service_args::{self, ServiceArgs};
use crate::service_fn::{self, ServiceFn};
use crate::signature::{self, HostedFn};
use crate::submit;

const ATTRIBUTE: &str = "hosted_service";

/// How the arguments read in messages; a lone string was probably the name.
const ARGUMENTS: Attribute = Attribute {
    name: ATTRIBUTE,
    positional: |literal| matches!(literal, syn::Lit::Str(_)).then_some("name"),
};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed: Item = match syn::parse2(item.clone()) {
        Ok(parsed) => parsed,
        // Not an item rustc can read either: let rustc report it.
        Err(_) => return item,
    };
    match parsed {
        Item::Fn(function) => expand_fn(args, &function),
        Item::Struct(structure) => expand_struct(args, structure),
        other => {
            let (span, what) = describe(&other);
            let fix = if let Item::Impl(_) = other {
                "put it on the struct the impl is for"
            } else {
                "it applies to an `async fn` (a background service) or to a struct that \
                 implements `HostedService`"
            };
            let error = syn::Error::new(
                span,
                format!("`#[hosted_service]` cannot be used on {what}; {fix}"),
            );
            with_item(&error, other)
        }
    }
}

/// The keyword of an unsupported item and how to call it in a sentence.
fn describe(item: &Item) -> (Span, &'static str) {
    match item {
        Item::Enum(item) => (item.enum_token.span, "an enum"),
        Item::Const(item) => (item.const_token.span, "a const"),
        Item::Static(item) => (item.static_token.span, "a static"),
        Item::Trait(item) => (item.trait_token.span, "a trait"),
        Item::Impl(item) => (item.impl_token.span, "an impl block"),
        Item::Union(item) => (item.union_token.span, "a union"),
        Item::Type(item) => (item.type_token.span, "a type alias"),
        Item::Mod(item) => (item.mod_token.span, "a module"),
        other => (other.span(), "this item"),
    }
}

// ---------------------------------------------------------------------------------------------
// On a function.

struct FnModel {
    args: ServiceArgs,
    function: HostedFn,
}

fn expand_fn(args: TokenStream, item: &ItemFn) -> TokenStream {
    let mut errors = Errors::new();
    let mut parsed = Args::parse(args, ARGUMENTS, service_args::KEYS, &mut errors);
    let service_args = ServiceArgs::take(&mut parsed, &mut errors);
    service_args.refuse_after_self(&item.sig.ident, &mut errors);
    let function = signature::check(&item.sig, ATTRIBUTE, &mut errors);
    signature::refuse_tick(&function, ATTRIBUTE, &mut errors);
    let model = FnModel {
        args: service_args,
        function,
    };
    match errors.finish() {
        Ok(()) => emit_fn(&model, item),
        // A method sits in an impl or a trait, where the marker and key items cannot go.
        Err(error) if model.function.is_method => with_item(&error, item),
        Err(error) => {
            let mut tokens = with_item(&error, item);
            tokens.extend(service_fn(&model, item).marker());
            tokens
        }
    }
}

/// The name the service registers under, readable through its path. `generics` are those of a
/// struct rejected for having them, so the stub still compiles.
fn emit_key(args: &ServiceArgs, ident: &Ident, generics: &Generics) -> TokenStream {
    let private = args.private();
    let name = args.name_expr(ident);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    // `do_not_recommend`: a wrong `after = path` should not list the user's services as the
    // types that implement the hidden trait.
    quote! {
        #[automatically_derived]
        #[diagnostic::do_not_recommend]
        impl #impl_generics #private::ServiceKey for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
        }
    }
}

fn emit_fn(model: &FnModel, item: &ItemFn) -> TokenStream {
    service_fn(model, item).emit_background()
}

fn service_fn<'a>(model: &'a FnModel, item: &'a ItemFn) -> ServiceFn<'a> {
    ServiceFn {
        args: &model.args,
        function: &model.function,
        item,
    }
}

// ---------------------------------------------------------------------------------------------
// On a struct.

struct StructModel {
    args: ServiceArgs,
    ident: Ident,
    fields: StructFields,
}

fn expand_struct(args: TokenStream, mut item: ItemStruct) -> TokenStream {
    let mut errors = Errors::new();
    let mut parsed = Args::parse(args, ARGUMENTS, service_args::KEYS, &mut errors);
    let service_args = ServiceArgs::take(&mut parsed, &mut errors);
    service_args.refuse_after_self(&item.ident, &mut errors);
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        let generics = if item.generics.params.is_empty() {
            item.generics.where_clause.to_token_stream()
        } else {
            item.generics.to_token_stream()
        };
        errors.spanned(
            generics,
            "`#[hosted_service]` types cannot be generic: the host builds exactly one instance",
        );
    }
    let fields = StructFields::take(&mut item, &mut errors);
    let model = StructModel {
        args: service_args,
        ident: item.ident.clone(),
        fields,
    };
    match errors.finish() {
        Ok(()) => emit_struct(&model, &item),
        Err(error) => {
            let mut tokens = with_item(&error, &item);
            let key = emit_key(&model.args, &model.ident, &item.generics);
            tokens.extend(quote!(const _: () = { #key };));
            tokens
        }
    }
}

fn emit_struct(model: &StructModel, item: &ItemStruct) -> TokenStream {
    let private = model.args.private();
    let ident = &model.ident;
    let key = emit_key(&model.args, ident, &item.generics);
    let service_assertion = quote_spanned! {ident.span()=>
        #private::assert_hosted_service::<#ident>();
    };
    let construct = model.fields.emit_construct(&private, ident);
    let calls = model.args.descriptor_calls(&private);
    let at = service_fn::at_item(&private, ident);
    let registration = submit::registration(
        &private,
        &quote! {
            #service_assertion
            registry.add_service(
                #private::ServiceDescriptor::__hosted_type::<#ident>(
                    <#ident as #private::ServiceKey>::NAME,
                )
                .__at(#at)
                #calls,
            );
        },
    );
    quote! {
        #item

        #ALLOW_QUALIFIED
        const _: () = {
            #key

            #construct

            #registration
        };
    }
}

//! `#[hosted_service]`: on an `async fn`, a background service; on a struct implementing
//! `HostedService`, a service built from injected fields and shared as `Arc<T>`.
//!
//! Three phases: [`Args`] parses the arguments, `validate_*` checks them against the item into
//! a model, `emit_*` writes the tokens.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens as _, format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Attribute, Fields, Generics, Ident, Item, ItemFn, ItemStruct, Type};

use crate::args::Args;
use crate::diagnostics::{Errors, with_item};
use crate::service_args::{self, ServiceArgs};
use crate::signature::{self, HostedFn};

const ATTRIBUTE: &str = "hosted_service";

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
    let mut parsed = Args::parse(args, service_args::KEYS, &mut errors);
    let service_args = ServiceArgs::take(&mut parsed, &mut errors);
    let function = signature::check(&item.sig, ATTRIBUTE, &mut errors);
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
            tokens.extend(emit_fn_marker(&model, item));
            let key = emit_key(&model.args, &model.function.ident, &Generics::default());
            tokens.extend(quote!(const _: () = { #key };));
            tokens
        }
    }
}

/// The marker type named like the function, so `after = that_function` is checked by the
/// compiler. A braced struct lives in the type namespace only, beside the function.
fn emit_fn_marker(model: &FnModel, item: &ItemFn) -> TokenStream {
    let ident = &model.function.ident;
    let vis = &item.vis;
    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code, reason = "names the service for `after = ...`")]
        #vis struct #ident {}
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
    let private = model.args.private();
    let ident = &model.function.ident;
    let marker = emit_fn_marker(model, item);
    let key = emit_key(&model.args, ident, &Generics::default());

    let locals: Vec<Ident> = model
        .function
        .params
        .iter()
        .map(|param| format_ident!("__hosted_{}", param.label))
        .collect();
    let injections = model
        .function
        .params
        .iter()
        .zip(&locals)
        .map(|(param, local)| {
            let (ty, label) = (&param.ty, &param.label);
            let assertion = assert_inject(&private, ty);
            quote_spanned! {ty.span()=>
                #assertion
                let #local = <#ty as #private::Inject>::inject(&__hosted_cx)
                    .await
                    .map_err(|error| #private::parameter_error(#label, error))?;
            }
        });
    let declarations = model.function.params.iter().map(|param| {
        let (ty, label) = (&param.ty, &param.label);
        let assertion = assert_inject(&private, ty);
        quote_spanned!(ty.span()=> #assertion #private::declare::<#ty>(__hosted_needs, #label);)
    });
    let call = quote!(#ident(#(#locals),*).await);
    let outcome = match &model.function.output {
        None => quote!(#private::IntoOutcome::into_outcome(#call)),
        // Bound first, so a return type that is not an outcome is reported once, at the user's
        // return type, rather than again at the attribute.
        Some(ty) => {
            let conversion = quote_spanned! {ty.span()=>
                #private::assert_outcome::<#ty>();
                #private::IntoOutcome::into_outcome(__hosted_returned)
            };
            quote! {
                let __hosted_returned = #call;
                #conversion
            }
        }
    };
    let calls = model.args.descriptor_calls();
    let line = quote_spanned!(ident.span()=> ::core::line!());
    // The host needs an `async fn` even when the body never awaits.
    let mut item = item.clone();
    item.attrs.push(syn::parse_quote!(
        #[allow(clippy::unused_async, reason = "`#[hosted_service]` runs an `async fn`")]
    ));

    quote! {
        #item

        #marker

        const _: () = {
            #key

            async fn __hosted_run(
                __hosted_cx: #private::RunContext,
            ) -> ::core::result::Result<(), #private::BoxError> {
                #(#injections)*
                #outcome
            }

            fn __hosted_declare(__hosted_needs: &mut #private::Dependencies) {
                #(#declarations)*
            }

            fn __hosted_register(registry: &mut #private::Registry) {
                registry.add_service(
                    #private::ServiceDescriptor::background(
                        <#ident as #private::ServiceKey>::NAME,
                        __hosted_run,
                    )
                    .__declare(__hosted_declare)
                    .__source(::core::file!(), #line)
                    #calls,
                );
            }

            #private::inventory::submit! {
                #private::Registration::new(__hosted_register)
            }
        };
    }
}

/// Checks, at `ty`, that it is injectable. Emitted first in every body that injects `ty`: rustc
/// reports a failed bound once per span and body, and prints identical errors once, so a type
/// that cannot be injected is reported once, at the user's type, with the same text everywhere.
fn assert_inject(private: &TokenStream, ty: &Type) -> TokenStream {
    quote_spanned!(ty.span()=> #private::assert_inject::<#ty>();)
}

// ---------------------------------------------------------------------------------------------
// On a struct.

struct StructModel {
    args: ServiceArgs,
    ident: Ident,
    fields: Vec<Field>,
    shape: Shape,
}

enum Shape {
    Named,
    Tuple,
    Unit,
}

struct Field {
    /// The field's name, or its index for tuple structs.
    member: syn::Member,
    label: String,
    ty: Type,
    source: FieldSource,
}

enum FieldSource {
    Injected,
    Default,
}

fn expand_struct(args: TokenStream, mut item: ItemStruct) -> TokenStream {
    let mut errors = Errors::new();
    let mut parsed = Args::parse(args, service_args::KEYS, &mut errors);
    let service_args = ServiceArgs::take(&mut parsed, &mut errors);
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
    let shape = match &item.fields {
        Fields::Named(_) => Shape::Named,
        Fields::Unnamed(_) => Shape::Tuple,
        Fields::Unit => Shape::Unit,
    };
    let fields = item
        .fields
        .iter_mut()
        .enumerate()
        .map(|(position, field)| {
            let source = take_field_source(&mut field.attrs, &mut errors);
            let (member, label) = match &field.ident {
                Some(ident) => (syn::Member::Named(ident.clone()), ident.to_string()),
                None => (syn::Member::Unnamed(position.into()), position.to_string()),
            };
            Field {
                member,
                label,
                ty: field.ty.clone(),
                source,
            }
        })
        .collect();
    let model = StructModel {
        args: service_args,
        ident: item.ident.clone(),
        fields,
        shape,
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

/// Reads and removes the `#[hosted(...)]` attributes of a field.
fn take_field_source(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> FieldSource {
    let mut source = FieldSource::Injected;
    attrs.retain(|attr| {
        if !attr.path().is_ident("hosted") {
            return true;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("default") {
                source = FieldSource::Default;
                Ok(())
            } else {
                let written = meta
                    .path
                    .segments
                    .iter()
                    .map(|segment| segment.ident.to_string())
                    .collect::<Vec<_>>()
                    .join("::");
                Err(meta.error(format!(
                    "unknown field option `{written}`; the only option is `default`, as in \
                     `#[hosted(default)]`, to build the field with `Default` instead of injecting it"
                )))
            }
        });
        if let Err(error) = parsed {
            errors.push(error);
        }
        false
    });
    source
}

fn emit_struct(model: &StructModel, item: &ItemStruct) -> TokenStream {
    let private = model.args.private();
    let ident = &model.ident;
    let key = emit_key(&model.args, ident, &item.generics);
    let service_assertion = quote_spanned! {ident.span()=>
        #private::assert_hosted_service::<#ident>();
    };
    let declarations = model.fields.iter().filter_map(|field| match field.source {
        FieldSource::Injected => {
            let (ty, label) = (&field.ty, &field.label);
            let assertion = assert_inject(&private, ty);
            Some(quote_spanned!(ty.span()=> #assertion #private::declare::<#ty>(__hosted_needs, #label);))
        }
        FieldSource::Default => None,
    });
    let values = model.fields.iter().map(|field| {
        let (member, ty, label) = (&field.member, &field.ty, &field.label);
        match field.source {
            FieldSource::Injected => {
                let assertion = assert_inject(&private, ty);
                quote_spanned! {ty.span()=>
                    #member: {
                        #assertion
                        <#ty as #private::Inject>::inject(__hosted_cx)
                            .await
                            .map_err(|error| #private::parameter_error(#label, error))?
                    }
                }
            }
            FieldSource::Default => {
                quote_spanned!(ty.span()=> #member: <#ty as ::core::default::Default>::default())
            }
        }
    });
    let construction = match model.shape {
        Shape::Unit => quote!(Self),
        Shape::Named | Shape::Tuple => quote!(Self { #(#values),* }),
    };
    let calls = model.args.descriptor_calls();
    let line = quote_spanned!(ident.span()=> ::core::line!());
    // Unused bindings would warn in the user's crate when no field is injected.
    let (needs_binding, cx_binding) = if model
        .fields
        .iter()
        .any(|field| matches!(field.source, FieldSource::Injected))
    {
        (quote!(__hosted_needs), quote!(__hosted_cx))
    } else {
        (quote!(_), quote!(_))
    };

    quote! {
        #item

        const _: () = {
            #key

            #[automatically_derived]
            impl #private::Construct for #ident {
                fn declare(#needs_binding: &mut #private::Dependencies) {
                    #(#declarations)*
                }

                async fn construct(
                    #cx_binding: &#private::RunContext,
                ) -> ::core::result::Result<Self, #private::InjectError> {
                    ::core::result::Result::Ok(#construction)
                }
            }

            fn __hosted_register(registry: &mut #private::Registry) {
                #service_assertion
                registry.add_service(
                    #private::ServiceDescriptor::__hosted_type::<#ident>(
                        <#ident as #private::ServiceKey>::NAME,
                    )
                    .__source(::core::file!(), #line)
                    #calls,
                );
            }

            #private::inventory::submit! {
                #private::Registration::new(__hosted_register)
            }
        };
    }
}

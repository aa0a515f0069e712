//! `#[singleton]`, `#[scoped]` and `#[transient]`: register a type, built from its fields, or the
//! value a factory function returns, with the container under a lifetime.
//!
//! Three phases: [`Args`] parses the arguments, `validate_*` checks them against the item into
//! a model, `emit_*` writes the tokens.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens as _, format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{GenericArgument, Ident, Item, ItemFn, ItemStruct, PathArguments, Type};

use crate::args::{Args, Attribute};
use crate::construct::StructFields;
use crate::diagnostics::{Errors, with_item};
use crate::injection::{
    ALLOW_QUALIFIED, declare_values, inject_params, inject_params_stepwise, tie_to_call,
};
use crate::signature::{self, HostedFn};
use crate::{submit, values};

/// Which attribute is expanding.
#[derive(Clone, Copy)]
pub(crate) enum ServiceLifetime {
    Singleton,
    Scoped,
    Transient,
}

impl ServiceLifetime {
    fn attribute(self) -> &'static str {
        match self {
            Self::Singleton => "singleton",
            Self::Scoped => "scoped",
            Self::Transient => "transient",
        }
    }

    fn variant(self) -> Ident {
        let name = match self {
            Self::Singleton => "Singleton",
            Self::Scoped => "Scoped",
            Self::Transient => "Transient",
        };
        Ident::new(name, Span::call_site())
    }
}

pub(crate) const KEYS: &[&str] = &["as", "crate"];

/// The checked arguments.
struct LifetimeArgs {
    lifetime: ServiceLifetime,
    /// The type the value is registered under, when not its own: `as = dyn Mailer`.
    register_as: Option<Type>,
    krate: syn::Path,
}

impl LifetimeArgs {
    fn parse(lifetime: ServiceLifetime, tokens: TokenStream, errors: &mut Errors) -> Self {
        let mut args = Args::parse(
            tokens,
            Attribute {
                name: lifetime.attribute(),
                positional: |_| None,
            },
            KEYS,
            errors,
        );
        let register_as = args
            .take("as")
            .and_then(|arg| errors.take(values::type_value("as", &arg.value)));
        let krate = args
            .take("crate")
            .and_then(|arg| errors.take(values::crate_path(&arg.value)))
            .unwrap_or_else(|| syn::parse_quote!(::hosted));
        Self {
            lifetime,
            register_as,
            krate,
        }
    }

    fn private(&self) -> TokenStream {
        let krate = &self.krate;
        quote!(#krate::__private)
    }
}

pub(crate) fn expand(
    lifetime: ServiceLifetime,
    args: TokenStream,
    item: TokenStream,
) -> TokenStream {
    let parsed: Item = match syn::parse2(item.clone()) {
        Ok(parsed) => parsed,
        // Not an item rustc can read either: let rustc report it.
        Err(_) => return item,
    };
    match parsed {
        Item::Fn(function) => expand_factory(lifetime, args, &function),
        Item::Struct(structure) => expand_struct(lifetime, args, structure),
        other => {
            let attribute = lifetime.attribute();
            let (span, what, fix) = describe(&other);
            let error = syn::Error::new(
                span,
                format!("`#[{attribute}]` cannot be used on {what}; {fix}"),
            );
            with_item(&error, other)
        }
    }
}

fn describe(item: &Item) -> (Span, &'static str, &'static str) {
    let usage = "it applies to a struct (built from its fields) or to a factory function that \
                 returns the value";
    match item {
        Item::Enum(item) => (
            item.enum_token.span,
            "an enum",
            "the container builds a struct from its fields, and an enum has no single \
             constructor; annotate a factory function that returns the enum instead",
        ),
        Item::Const(item) => (item.const_token.span, "a const", usage),
        Item::Static(item) => (item.static_token.span, "a static", usage),
        Item::Trait(item) => (
            item.trait_token.span,
            "a trait",
            "register an implementation with `as = dyn Trait` instead",
        ),
        Item::Impl(item) => (
            item.impl_token.span,
            "an impl block",
            "put it on the struct the impl is for",
        ),
        Item::Union(item) => (item.union_token.span, "a union", usage),
        Item::Type(item) => (
            item.type_token.span,
            "a type alias",
            "annotate the struct itself, or a factory function",
        ),
        Item::Mod(item) => (item.mod_token.span, "a module", usage),
        other => (other.span(), "this item", usage),
    }
}

// ---------------------------------------------------------------------------------------------
// On a factory function.

struct FactoryModel {
    args: LifetimeArgs,
    function: HostedFn,
    is_async: bool,
    /// The type of the value the function returns, `T` of `T` or `Result<T, E>`.
    value: Type,
    fallible: bool,
}

fn expand_factory(lifetime: ServiceLifetime, args: TokenStream, item: &ItemFn) -> TokenStream {
    let mut errors = Errors::new();
    let args = LifetimeArgs::parse(lifetime, args, &mut errors);
    let function = signature::check_sync_or_async(&item.sig, lifetime.attribute(), &mut errors);
    let returned = validate_output(&function, lifetime, &mut errors);
    match (errors.finish(), returned) {
        (Ok(()), Some((value, fallible))) => {
            let model = FactoryModel {
                args,
                function,
                is_async: item.sig.asyncness.is_some(),
                value,
                fallible,
            };
            emit_factory(&model, item)
        }
        (Err(error), _) => with_item(&error, item),
        (Ok(()), None) => item.to_token_stream(),
    }
}

/// The value a factory returns: `T`, or `T` of a `Result<T, E>` (any path ending in `Result`,
/// such as `anyhow::Result<T>` or `io::Result<T>`).
fn validate_output(
    function: &HostedFn,
    lifetime: ServiceLifetime,
    errors: &mut Errors,
) -> Option<(Type, bool)> {
    let attribute = lifetime.attribute();
    let Some(output) = &function.output else {
        errors.at(
            function.ident.span(),
            format!(
                "a `#[{attribute}]` factory must return the value it provides: add `-> T` or \
                 `-> Result<T, E>`"
            ),
        );
        return None;
    };
    if let Type::Tuple(tuple) = output
        && tuple.elems.is_empty()
    {
        errors.spanned(
            output,
            format!("a `#[{attribute}]` factory must return the value it provides, not `()`"),
        );
        return None;
    }
    if let Type::Path(path) = output
        && let Some(last) = path.path.segments.last()
        && last.ident == "Result"
        && let PathArguments::AngleBracketed(arguments) = &last.arguments
        && let Some(GenericArgument::Type(value)) = arguments.args.first()
    {
        return Some((value.clone(), true));
    }
    Some((output.clone(), false))
}

fn emit_factory(model: &FactoryModel, item: &ItemFn) -> TokenStream {
    let private = model.args.private();
    let ident = &model.function.ident;
    let value_type = &model.value;
    let (declared, declarations) = declare_values(
        &private,
        model
            .function
            .params
            .iter()
            .map(|param| (param.ty.span(), param.label.as_str())),
    );
    let tie = tie_to_call(ident, &[], &declared);
    let needs_binding = binding_if(!model.function.params.is_empty(), "__hosted_needs");
    let (factory_fn, factory) = emit_factory_fn(model, &private);
    let registration = emit_registration(
        &model.args,
        value_type,
        ident,
        &factory,
        &quote!(__hosted_declare),
    );
    let mut item = item.clone();
    if model.is_async {
        item.attrs.push(syn::parse_quote!(
            #[allow(clippy::unused_async, reason = "the host awaits factories that may await")]
        ));
    } else {
        item.attrs.push(syn::parse_quote!(
            #[allow(clippy::needless_pass_by_value, reason = "the host injects parameters by value")]
        ));
    }

    quote! {
        #item

        #ALLOW_QUALIFIED
        const _: () = {
            #factory_fn

            fn __hosted_declare(#needs_binding: &mut #private::Dependencies) {
                #(#declarations)*
                #tie
            }

            #registration
        };
    }
}

/// The generated factory function and the `GeneratedFactory` naming it. A factory with nothing
/// to inject and nothing to await builds without a future.
fn emit_factory_fn(model: &FactoryModel, private: &TokenStream) -> (TokenStream, TokenStream) {
    let ident = &model.function.ident;
    let value_type = &model.value;
    let registered = model.args.register_as.as_ref().unwrap_or(value_type);
    let (locals, injections) = inject_params(private, &model.function.params);
    let call = if model.is_async {
        quote!(#ident(#(#locals),*).await)
    } else {
        quote!(#ident(#(#locals),*))
    };
    let returned = if model.fallible {
        quote!(#call.map_err(::core::convert::Into::<#private::BoxError>::into)?)
    } else {
        call
    };
    let shared = emit_shared(private, value_type, model.args.register_as.as_ref());
    // Checked first in each body, at the user's type: rustc then reports a value that is not
    // `Send + Sync + 'static` once per body, there, instead of again at every bound it meets.
    let provided_assertion = assert_provided(private, value_type, registered);
    let cx_binding = binding_if(!model.function.params.is_empty(), "__hosted_cx");
    let built_type = quote!(::core::result::Result<#private::Built, #private::BoxError>);
    if !model.is_async && !model.function.params.is_empty() {
        let build = quote!({
            let __hosted_value: #value_type = #returned;
            #shared
        });
        let body = inject_params_stepwise(private, &model.function.params, &build);
        let factory_fn = quote! {
            fn __hosted_factory(
                __hosted_cx: &#private::RunContext,
            ) -> ::core::result::Result<#private::Step, #private::BoxError> {
                #provided_assertion
                #body
            }
        };
        return (
            factory_fn,
            quote!(#private::GeneratedFactory::Stepwise(__hosted_factory)),
        );
    }
    if model.is_async {
        let factory_fn = quote! {
            fn __hosted_factory(
                #cx_binding: #private::RunContext,
            ) -> #private::BoxFuture<#built_type> {
                ::std::boxed::Box::pin(async move {
                    #provided_assertion
                    #(#injections)*
                    let __hosted_value: #value_type = #returned;
                    #shared
                })
            }
        };
        (
            factory_fn,
            quote!(#private::GeneratedFactory::Async(__hosted_factory)),
        )
    } else {
        let factory_fn = quote! {
            #[allow(clippy::unnecessary_wraps, reason = "the host's factory signature is fallible")]
            fn __hosted_factory(_: &#private::RunContext) -> #built_type {
                #provided_assertion
                let __hosted_value: #value_type = #returned;
                #shared
            }
        };
        (
            factory_fn,
            quote!(#private::GeneratedFactory::Sync(__hosted_factory)),
        )
    }
}

/// The registration adding the provider to the registry, submitted before `main`: the one registration both factories and annotated structs emit. `factory` names
/// the `GeneratedFactory`, `declare` the function declaring what it needs; `ident` spans the
/// registration site reported in diagnostics.
fn emit_registration(
    args: &LifetimeArgs,
    value_type: &Type,
    ident: &Ident,
    factory: &TokenStream,
    declare: &TokenStream,
) -> TokenStream {
    let private = args.private();
    let lifetime = args.lifetime.variant();
    let registered = args.register_as.as_ref().unwrap_or(value_type);
    // The provider constructor matching [`emit_shared`]'s representation.
    let provider = match &args.register_as {
        None => quote!(#private::Provider::__erased_sized::<#value_type>),
        Some(registered) => quote!(#private::Provider::__erased::<#registered>),
    };
    let provided_assertion = assert_provided(&private, value_type, registered);
    let line = quote_spanned!(ident.span()=> ::core::line!());
    let name = ident.to_string();
    submit::registration(
        &private,
        &quote! {
            #provided_assertion
            registry.add_provider(
                #provider(
                    #private::ServiceLifetime::#lifetime,
                    #factory,
                    #declare,
                    {
                        use #private::{DisposeViaNothing as _, DisposeViaTrait as _};
                        (&#private::DisposeProbe::<#value_type>::new()).disposable()
                    },
                )
                .__registered_by(
                    ::core::concat!(::core::module_path!(), "::", #name),
                    ::core::file!(),
                    #line,
                ),
            );
        },
    )
}

/// The statements turning `__hosted_value` into a `Built`: shared as `Arc<T>` in one allocation,
/// or as `Arc<dyn Trait>` under `as = dyn Trait`, with the value type's dispose hook when it has
/// one. A value that does not coerce to the registered type is reported at `as`.
fn emit_shared(
    private: &TokenStream,
    value_type: &Type,
    register_as: Option<&Type>,
) -> TokenStream {
    let built = match register_as {
        None => quote_spanned! {value_type.span()=>
            ::core::result::Result::Ok(#private::Built::__sized::<#value_type>(__hosted_shared, __hosted_disposer))
        },
        Some(registered) => {
            let coerced = quote_spanned! {registered.span()=>
                let __hosted_registered: ::std::sync::Arc<#registered> = __hosted_shared;
            };
            let built = quote_spanned! {value_type.span()=>
                ::core::result::Result::Ok(#private::Built::__new(__hosted_registered, __hosted_disposer))
            };
            quote!(#coerced #built)
        }
    };
    quote! {
        let __hosted_shared: ::std::sync::Arc<#value_type> = ::std::sync::Arc::new(__hosted_value);
        let __hosted_disposer = {
            use #private::{DisposeViaNothing as _, DisposeViaTrait as _};
            (&#private::DisposeProbe::<#value_type>::new()).disposer(&__hosted_shared)
        };
        #built
    }
}

/// The check, at the user's types, that the value and the type it is registered as can be
/// shared between threads for the life of the host.
fn assert_provided(private: &TokenStream, value_type: &Type, registered: &Type) -> TokenStream {
    let value = quote_spanned!(value_type.span()=> #private::assert_provided::<#value_type>(););
    if std::ptr::eq(value_type, registered) {
        value
    } else {
        let registered =
            quote_spanned!(registered.span()=> #private::assert_provided::<#registered>(););
        quote!(#value #registered)
    }
}

fn binding_if(used: bool, name: &str) -> TokenStream {
    if used {
        format_ident!("{}", name).into_token_stream()
    } else {
        quote!(_)
    }
}

// ---------------------------------------------------------------------------------------------
// On a struct.

struct StructModel {
    args: LifetimeArgs,
    ident: Ident,
    fields: StructFields,
}

fn expand_struct(
    lifetime: ServiceLifetime,
    args: TokenStream,
    mut item: ItemStruct,
) -> TokenStream {
    let mut errors = Errors::new();
    let args = LifetimeArgs::parse(lifetime, args, &mut errors);
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        let generics = if item.generics.params.is_empty() {
            item.generics.where_clause.to_token_stream()
        } else {
            item.generics.to_token_stream()
        };
        errors.spanned(
            generics,
            format!(
                "`#[{}]` types cannot be generic: the container registers one concrete type; \
                 annotate a factory function returning the instantiation you need",
                lifetime.attribute()
            ),
        );
    }
    let fields = StructFields::take(&mut item, &mut errors);
    let model = StructModel {
        args,
        ident: item.ident.clone(),
        fields,
    };
    match errors.finish() {
        Ok(()) => emit_struct(&model, &item),
        Err(error) => with_item(&error, &item),
    }
}

fn emit_struct(model: &StructModel, item: &ItemStruct) -> TokenStream {
    let private = model.args.private();
    let ident = &model.ident;
    let value_type: Type = syn::parse_quote!(#ident);
    let registered = model.args.register_as.as_ref().unwrap_or(&value_type);
    let construct = model.fields.emit_construct(&private, ident);
    let shared = emit_shared(&private, &value_type, model.args.register_as.as_ref());
    let provided_assertion = assert_provided(&private, &value_type, registered);
    let registration = emit_registration(
        &model.args,
        &value_type,
        ident,
        &quote!(#private::GeneratedFactory::Async(__hosted_factory)),
        &quote!(<#ident as #private::Construct>::declare),
    );

    quote! {
        #item

        #ALLOW_QUALIFIED
        const _: () = {
            #construct

            fn __hosted_factory(
                __hosted_cx: #private::RunContext,
            ) -> #private::BoxFuture<
                ::core::result::Result<#private::Built, #private::BoxError>,
            > {
                ::std::boxed::Box::pin(async move {
                    #provided_assertion
                    let __hosted_value =
                        <#ident as #private::Construct>::construct(&__hosted_cx).await?;
                    #shared
                })
            }

            #registration
        };
    }
}

//! The generated code that injects parameters and fields: one `Inject` call per value, spanned
//! at the user's type. Shared by every attribute.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Ident, Type};

use crate::signature::Param;

/// The expression injecting one value of type `ty` from the context `cx`, naming `label` on
/// failure; `?` returns the error from the enclosing function.
pub(crate) fn inject_value(
    private: &TokenStream,
    cx: &TokenStream,
    ty: &Type,
    label: &str,
) -> TokenStream {
    // Named through the user's type and spanned at it: a type that is not injectable is
    // reported there, with `Inject`'s message, and rustc prints the identical error of the
    // declaration below once.
    quote_spanned! {ty.span()=>
        <#ty as #private::Inject>::inject(#cx).await.map_err(#private::label(#label))?
    }
}

/// The local variables holding a function's injected parameters, and the statements filling
/// them from `__hosted_cx`.
pub(crate) fn inject_params(
    private: &TokenStream,
    params: &[Param],
) -> (Vec<Ident>, Vec<TokenStream>) {
    let cx = quote!(&__hosted_cx);
    params
        .iter()
        .map(|param| {
            let local = format_ident!("__hosted_{}", param.label);
            let value = inject_value(private, &cx, &param.ty, &param.label);
            let statement = quote!(let #local = #value;);
            (local, statement)
        })
        .unzip()
}

/// The body of a `GeneratedFactory::Stepwise` factory, for a function that does not await:
/// tries each parameter without awaiting (`Inject::inject_now`), in order, from
/// `__hosted_cx: &RunContext`, stopping at the first that cannot answer. When every one
/// answered, `build` (a block evaluating to `Result<Built, BoxError>` from the parameters'
/// locals) runs at once; otherwise it runs in the returned future, after the parameters not had
/// yet are injected there, awaiting.
pub(crate) fn inject_params_stepwise(
    private: &TokenStream,
    params: &[Param],
    build: &TokenStream,
) -> TokenStream {
    let locals: Vec<Ident> = params
        .iter()
        .map(|param| format_ident!("__hosted_{}", param.label))
        .collect();
    let attempts = params
        .iter()
        .zip(&locals)
        .enumerate()
        .map(|(at, (param, local))| {
            let ty = &param.ty;
            let label = &param.label;
            let attempt = quote_spanned! {ty.span()=>
                match <#ty as #private::Inject>::inject_now(__hosted_cx) {
                    ::core::option::Option::Some(::core::result::Result::Ok(value)) => {
                        ::core::option::Option::Some(value)
                    }
                    ::core::option::Option::Some(::core::result::Result::Err(error)) => {
                        return ::core::result::Result::Err(
                            #private::parameter_error(#label, error).into(),
                        );
                    }
                    ::core::option::Option::None => ::core::option::Option::None,
                }
            };
            match at.checked_sub(1).map(|previous| &locals[previous]) {
                None => quote!(let #local = #attempt;),
                Some(previous) => quote! {
                    let #local = if #previous.is_some() {
                        #attempt
                    } else {
                        ::core::option::Option::None
                    };
                },
            }
        });
    let cx = quote!(&__hosted_cx);
    let awaited = params.iter().zip(&locals).map(|(param, local)| {
        let value = inject_value(private, &cx, &param.ty, &param.label);
        quote! {
            let #local = match #local {
                ::core::option::Option::Some(value) => value,
                ::core::option::Option::None => #value,
            };
        }
    });
    quote! {
        #(#attempts)*
        match (#(#locals,)*) {
            (#(::core::option::Option::Some(#locals),)*) => #private::Step::__now(#build),
            (#(#locals,)*) => {
                let __hosted_cx = ::core::clone::Clone::clone(__hosted_cx);
                ::core::result::Result::Ok(#private::Step::Later(::std::boxed::Box::pin(
                    async move {
                        #(#awaited)*
                        #build
                    },
                )))
            }
        }
    }
}

/// The statements declaring what each value needs into `__hosted_needs`.
pub(crate) fn declare_values<'a>(
    private: &'a TokenStream,
    values: impl IntoIterator<Item = (&'a Type, &'a str)> + 'a,
) -> impl Iterator<Item = TokenStream> + 'a {
    values.into_iter().map(move |(ty, label)| {
        quote_spanned! {ty.span()=>
            #private::name_parameter(__hosted_needs, #label);
            <#ty as #private::Inject>::declare(__hosted_needs);
        }
    })
}

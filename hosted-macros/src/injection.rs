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
        {
            <#ty as #private::Inject>::inject(#cx)
                .await
                .map_err(|error| #private::parameter_error(#label, error))?
        }
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

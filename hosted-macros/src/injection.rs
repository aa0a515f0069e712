//! The generated code that injects parameters and fields: one call of `hosted::di::inject` per
//! value and site, spanned at the user's type. Shared by every attribute.
//!
//! The user's type is never written again here: rustc infers each value's type from where it
//! goes (the user's function, the struct's field). A type that is not injectable is then one
//! error at the user's type — the same text at every site, which rustc prints once — and a
//! misspelt type is reported only where the user wrote it.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned as _;

use crate::signature::Param;

/// The expression injecting one value from the context `cx` (a `&RunContext`), awaiting, spanned
/// at `span` (the user's type), naming `label` on failure; `?` returns the error from the
/// enclosing function.
pub(crate) fn inject_value(
    private: &TokenStream,
    cx: &TokenStream,
    span: Span,
    label: &str,
) -> TokenStream {
    let at_type = spanned_at(private, span);
    quote_spanned! {span=>
        #at_type::inject(#private::InjectSite::Later(#cx)).later().await.map_err(#private::label(#label))?
    }
}

/// On each block of generated code that calls `inject`: the call is spanned at the user's type,
/// so to rustc its path is the user's, and `unused_qualifications` would ask them to shorten it.
/// (On the block rather than on each statement: attributes cannot sit on expressions, and one
/// line per block keeps the expansion short.)
pub(crate) const ALLOW_QUALIFIED: AllowQualified = AllowQualified;

/// [`ALLOW_QUALIFIED`]'s tokens.
pub(crate) struct AllowQualified;

impl quote::ToTokens for AllowQualified {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(quote! {
            #[allow(unused_qualifications, reason = "user-spanned paths")]
        });
    }
}

/// The local variable holding the injected value of the parameter or field `label`: prefixed so
/// that no label (`cx`, `needs`, `item`) can shadow the generated code's own locals.
pub(crate) fn local(label: &str) -> Ident {
    format_ident!("__hosted_arg_{}", label)
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
            let local = local(&param.label);
            let value = inject_value(private, &cx, param.ty.span(), &param.label);
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
    let locals: Vec<Ident> = params.iter().map(|param| local(&param.label)).collect();
    let attempts = params
        .iter()
        .zip(&locals)
        .enumerate()
        .map(|(index, (param, local))| {
            let label = &param.label;
            let span = param.ty.span();
            let at_type = spanned_at(private, span);
            let attempt = quote_spanned! {span=> {
                match #at_type::inject(#private::InjectSite::Now(__hosted_cx)).now() {
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
            }};
            match index.checked_sub(1).map(|previous| &locals[previous]) {
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
        let value = inject_value(private, &cx, param.ty.span(), &param.label);
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

/// The statements declaring what each value needs into `__hosted_needs`, one local per value
/// (see [`local`]) to name its type in a tie: the caller ends the declarations
/// with a closure, never called, passing `<local>.never_called()` where the value goes.
pub(crate) fn declare_values<'a>(
    private: &'a TokenStream,
    values: impl IntoIterator<Item = (Span, &'a str)> + 'a,
) -> (Vec<Ident>, Vec<TokenStream>) {
    values
        .into_iter()
        .map(move |(span, label)| {
            let local = local(label);
            let at_type = spanned_at(private, span);
            let statement = quote_spanned! {span=>
                #private::name_parameter(__hosted_needs, #label);
                let #local = #at_type::inject(#private::InjectSite::Declare(__hosted_needs));
            };
            (local, statement)
        })
        .unzip()
}

/// The closure, never called, that ties each declared value to its parameter of `callee`, after
/// `leading` arguments that are not injected (a queue's item): rustc infers the type to declare
/// from the user's signature. Nothing when nothing is injected.
pub(crate) fn tie_to_call(
    callee: &Ident,
    leading: &[TokenStream],
    declared: &[Ident],
) -> TokenStream {
    if declared.is_empty() {
        return TokenStream::new();
    }
    quote! {
        let _ = |#(#leading),*| #callee(#(#leading,)* #(#declared.never_called()),*);
    }
}

/// The path `private` (`::hosted::__private`), spanned at `span`: an expression starting with it
/// is then spanned at `span` alone, and so is what rustc reports there.
pub(crate) fn spanned_at(private: &TokenStream, span: Span) -> TokenStream {
    private
        .clone()
        .into_iter()
        .map(|mut token| {
            token.set_span(span);
            token
        })
        .collect::<TokenStream>()
}

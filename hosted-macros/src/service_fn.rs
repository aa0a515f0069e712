//! What every attribute that makes a service of an `async fn` emits around its own runner: the
//! marker type that lets `after = that_fn` name the service, the injection of the parameters,
//! the conversion of the return value, the declaration of the needs, and the registration.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Ident, ItemFn};

use crate::injection::{declare_values, inject_params, tie_to_call};
use crate::service_args::ServiceArgs;
use crate::signature::HostedFn;

/// An annotated function and its checked service arguments.
pub(crate) struct ServiceFn<'a> {
    pub(crate) args: &'a ServiceArgs,
    pub(crate) function: &'a HostedFn,
    pub(crate) item: &'a ItemFn,
    /// The attribute's name, for the lint allowance's reason.
    pub(crate) attribute: &'static str,
}

impl ServiceFn<'_> {
    pub(crate) fn private(&self) -> TokenStream {
        self.args.private()
    }

    fn ident(&self) -> &Ident {
        &self.function.ident
    }

    /// The marker type named like the function (a braced struct lives in the type namespace
    /// only, beside the function) and the name it registers under. Also emitted when the
    /// attribute is wrong, so other services' `after` still compile.
    pub(crate) fn marker(&self) -> TokenStream {
        let marker = self.marker_type();
        let key = self.key();
        quote! {
            #marker

            const _: () = {
                #key
            };
        }
    }

    fn marker_type(&self) -> TokenStream {
        let ident = self.ident();
        let vis = &self.item.vis;
        quote! {
            #[doc(hidden)]
            #[allow(non_camel_case_types, dead_code, reason = "names the service for `after = ...`")]
            #vis struct #ident {}
        }
    }

    fn key(&self) -> TokenStream {
        let private = self.private();
        let ident = self.ident();
        let name = self.args.name_expr(ident);
        // `do_not_recommend`: a wrong `after = path` should not list the user's services as the
        // types that implement the hidden trait.
        quote! {
            #[automatically_derived]
            #[diagnostic::do_not_recommend]
            impl #private::ServiceKey for #ident {
                const NAME: &'static str = #name;
            }
        }
    }

    /// The statements injecting the parameters from `__hosted_cx` and calling the function with
    /// `leading` arguments first (a queue's item), then the conversion of what it returns into
    /// `Result<(), BoxError>`.
    pub(crate) fn body(&self, leading: &[TokenStream]) -> TokenStream {
        let private = self.private();
        let ident = self.ident();
        let (locals, injections) = inject_params(&private, &self.function.params);
        let call = quote!(#ident(#(#leading,)* #(#locals),*).await);
        let outcome = match &self.function.output {
            None => quote!(#private::IntoOutcome::into_outcome(#call)),
            // Named through the user's return type and spanned at it: a type that is not an
            // outcome is reported once, there, rather than again at the attribute.
            Some(ty) => {
                let conversion = quote_spanned! {ty.span()=>
                    <#ty as #private::IntoOutcome>::into_outcome(__hosted_returned)
                };
                quote! {
                    let __hosted_returned = #call;
                    #conversion
                }
            }
        };
        quote! {
            #(#injections)*
            #outcome
        }
    }

    /// Everything: the user's function (allowed to be `async` without awaiting, since the host
    /// needs an `async fn`), the marker, and one block with `runner` (the attribute's own items),
    /// the needs, and the registration of `descriptor` (a `ServiceDescriptor` expression) after
    /// `checks`.
    pub(crate) fn emit(
        &self,
        leading: &[TokenStream],
        runner: &TokenStream,
        descriptor: &TokenStream,
        checks: &TokenStream,
    ) -> TokenStream {
        let private = self.private();
        let ident = self.ident();
        let marker = self.marker_type();
        let key = self.key();
        let (declared, declarations) = declare_values(
            &private,
            self.function
                .params
                .iter()
                .map(|param| (param.ty.span(), param.label.as_str())),
        );
        let tie = tie_to_call(ident, leading, &declared);
        let calls = self.args.descriptor_calls();
        let line = quote_spanned!(ident.span()=> ::core::line!());
        let reason = format!("`#[{}]` runs an `async fn`", self.attribute);
        let mut item = self.item.clone();
        item.attrs
            .push(syn::parse_quote!(#[allow(clippy::unused_async, reason = #reason)]));
        quote! {
            #item

            #marker

            const _: () = {
                #key

                #runner

                fn __hosted_declare(__hosted_needs: &mut #private::Dependencies) {
                    #(#declarations)*
                    #tie
                }

                fn __hosted_register(registry: &mut #private::Registry) {
                    #checks
                    registry.add_service(
                        #descriptor
                            .__declare(__hosted_declare)
                            .__source(::core::file!(), #line)
                            #calls,
                    );
                }

                #private::inventory::submit! {
                    #private::Registration::new(__hosted_register, ::core::env!("CARGO_CRATE_NAME"))
                }
            };
        }
    }

    /// The expression of the service's registered name.
    pub(crate) fn name(&self) -> TokenStream {
        let private = self.private();
        let ident = self.ident();
        quote!(<#ident as #private::ServiceKey>::NAME)
    }
}

//! What every attribute that makes a service of an `async fn` emits around its own runner: the
//! marker type that lets `after = that_fn` name the service, the injection of the parameters,
//! the conversion of the return value, the declaration of the needs, and the registration.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Ident, ItemFn};

use crate::injection::{ALLOW_QUALIFIED, declare_values, inject_params, spanned_at, tie_to_call};
use crate::service_args::ServiceArgs;
use crate::signature::HostedFn;
use crate::submit;

/// An annotated function and its checked service arguments.
pub(crate) struct ServiceFn<'a> {
    pub(crate) args: &'a ServiceArgs,
    pub(crate) function: &'a HostedFn,
    pub(crate) item: &'a ItemFn,
}

impl ServiceFn<'_> {
    /// The runtime's hidden module, as the generated code names it: through the alias every
    /// block of the expansion imports first (see [`Self::alias`]), which keeps the lines short.
    pub(crate) fn private() -> TokenStream {
        quote!(__hosted)
    }

    /// The import naming the runtime's hidden module `__hosted` in a block.
    fn alias(&self) -> TokenStream {
        let private = self.args.private();
        quote!(use #private as __hosted;)
    }

    fn ident(&self) -> &Ident {
        &self.function.ident
    }

    /// The marker type named like the function (a braced struct lives in the type namespace
    /// only, beside the function) and the name it registers under. Also emitted when the
    /// attribute is wrong, so other services' `after` still compile.
    pub(crate) fn marker(&self) -> TokenStream {
        let marker = self.marker_type();
        let alias = self.alias();
        let key = self.key();
        quote! {
            #marker

            const _: () = {
                #alias
                #key
            };
        }
    }

    fn marker_type(&self) -> TokenStream {
        let ident = self.ident();
        let vis = &self.item.vis;
        quote! {
            #[doc(hidden)]
            #[allow(non_camel_case_types, dead_code, reason = "for `after`")]
            #vis struct #ident {}
        }
    }

    fn key(&self) -> TokenStream {
        let private = Self::private();
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
        let private = Self::private();
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

    /// The user's function, allowed to be `async` without awaiting (the host needs an
    /// `async fn`), and its marker.
    fn item_and_marker(&self) -> TokenStream {
        let mut item = self.item.clone();
        item.attrs
            .push(syn::parse_quote!(#[allow(clippy::unused_async, reason = "the host awaits it")]));
        let marker = self.marker_type();
        quote! {
            #item

            #marker
        }
    }

    /// The statements of the function declaring what the parameters need, ending with the tie
    /// to the user's function (called with `leading` arguments first, a queue's item) that lets
    /// rustc infer each declared type from the user's signature.
    fn declarations(&self, leading: &[TokenStream]) -> TokenStream {
        let private = Self::private();
        let (declared, statements) = declare_values(
            &private,
            self.function
                .params
                .iter()
                .map(|param| (param.ty.span(), param.label.as_str())),
        );
        let tie = tie_to_call(self.ident(), leading, &declared);
        quote! {
            #(#statements)*
            #tie
        }
    }

    /// Where the function is, as an `At` expression spanned at its name: the place the host
    /// reports the service at (see [`at_item`]).
    fn at(&self) -> TokenStream {
        at_item(&Self::private(), self.ident())
    }

    /// A `#[hosted_service] async fn`: the marker implementing `BackgroundFn`, which the
    /// runtime's generic registration reads.
    pub(crate) fn emit_background(&self) -> TokenStream {
        let private = Self::private();
        let ident = self.ident();
        let item = self.item_and_marker();
        let alias = self.alias();
        let name = self.args.name_expr(ident);
        let at = self.at();
        let declarations = self.declarations(&[]);
        let body = self.body(&[]);
        let calls = self.args.descriptor_calls(&private);
        let configure = (!calls.is_empty()).then(|| {
            quote! {
                fn configure(service: #private::ServiceDescriptor) -> #private::ServiceDescriptor {
                    service #calls
                }
            }
        });
        let constructor = submit::constructor(&private, &quote!(#private::background::<#ident>));
        quote! {
            #item

            #ALLOW_QUALIFIED
            const _: () = {
                #alias

                #[automatically_derived]
                impl #private::BackgroundFn for #ident {
                    const NAME: &'static str = #name;
                    const AT: #private::At = #at;

                    fn declare(__hosted_needs: &mut #private::Dependencies) {
                        #declarations
                    }

                    async fn run(
                        __hosted_cx: #private::RunContext,
                    ) -> ::core::result::Result<(), #private::BoxError> {
                        #body
                    }

                    #configure
                }

                #constructor
            };
        }
    }

    /// Everything for the other kinds of function: the user's function, the marker, and one block
    /// with `runner` (the attribute's own items), the needs, and the registration of
    /// `descriptor` (a `ServiceDescriptor` expression) after `checks`.
    pub(crate) fn emit(
        &self,
        leading: &[TokenStream],
        runner: &TokenStream,
        descriptor: &TokenStream,
        checks: &TokenStream,
    ) -> TokenStream {
        let private = Self::private();
        let item = self.item_and_marker();
        let alias = self.alias();
        let key = self.key();
        let declarations = self.declarations(leading);
        let calls = self.args.descriptor_calls(&private);
        let at = self.at();
        let registration = submit::registration(
            &private,
            &quote! {
                #checks
                registry.add_service(
                    #descriptor
                        .__declare(__hosted_declare)
                        .__at(#at)
                        #calls,
                );
            },
        );
        quote! {
            #item

            #ALLOW_QUALIFIED
            const _: () = {
                #alias
                #key

                #runner

                fn __hosted_declare(__hosted_needs: &mut #private::Dependencies) {
                    #declarations
                }

                #registration
            };
        }
    }

    /// The expression of the service's registered name.
    pub(crate) fn name(&self) -> TokenStream {
        let private = Self::private();
        let ident = self.ident();
        quote!(<#ident as #private::ServiceKey>::NAME)
    }
}

/// `hosted::__private::At::here(..)` spanned at `ident`, an annotated item's name: `At::here`
/// reads the place it is called from, so the expansion holds no line number that an edit above
/// the item would change.
pub(crate) fn at_item(private: &TokenStream, ident: &Ident) -> TokenStream {
    let here = spanned_at(private, ident.span());
    quote_spanned! {ident.span()=>
        #here::At::here(::core::env!("CARGO_CRATE_NAME"))
    }
}

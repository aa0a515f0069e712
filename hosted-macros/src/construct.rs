//! Structs built from their fields: every field injected, except those marked
//! `#[hosted(default)]`. Shared by `#[hosted_service]` and the service-lifetime attributes.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Attribute, Fields, ItemStruct, Type};

use crate::diagnostics::Errors;
use crate::injection::{declare_values, inject_value};

/// A struct's fields and how each is obtained. Reading it removes the `#[hosted(...)]` field
/// attributes from the item, which rustc would not know.
pub(crate) struct StructFields {
    fields: Vec<Field>,
    shape: Shape,
}

enum Shape {
    Braced,
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

impl StructFields {
    pub(crate) fn take(item: &mut ItemStruct, errors: &mut Errors) -> Self {
        let shape = match &item.fields {
            Fields::Named(_) | Fields::Unnamed(_) => Shape::Braced,
            Fields::Unit => Shape::Unit,
        };
        let fields = item
            .fields
            .iter_mut()
            .enumerate()
            .map(|(position, field)| {
                let source = take_field_source(&mut field.attrs, errors);
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
        Self { fields, shape }
    }

    /// The `Construct` impl building `ident` from its fields.
    pub(crate) fn emit_construct(&self, private: &TokenStream, ident: &syn::Ident) -> TokenStream {
        let injected = || {
            self.fields
                .iter()
                .filter(|field| matches!(field.source, FieldSource::Injected))
        };
        let (declared, declarations) = declare_values(
            private,
            injected().map(|field| (field.ty.span(), field.label.as_str())),
        );
        let cx = &quote!(__hosted_cx);
        // The values of the fields, injected from `cx` or, in the declarations' tie, named only.
        let values = |tie: bool| {
            let mut declared = declared.iter();
            let values = self.fields.iter().map(move |field| {
                let (member, ty) = (&field.member, &field.ty);
                match field.source {
                    FieldSource::Injected if tie => {
                        let local = declared.next();
                        quote!(#member: #local.never_called())
                    }
                    FieldSource::Injected => {
                        let value = inject_value(private, cx, ty.span(), &field.label);
                        quote!(#member: #value)
                    }
                    FieldSource::Default => quote_spanned! {ty.span()=>
                        #member: <#ty as ::core::default::Default>::default()
                    },
                }
            });
            match self.shape {
                Shape::Unit => quote!(Self),
                Shape::Braced => quote!(Self { #(#values),* }),
            }
        };
        let construction = values(false);
        // Ties each declared value to its field, so rustc infers the type to declare.
        let tie = if declared.is_empty() {
            TokenStream::new()
        } else {
            let named = values(true);
            quote!(let _ = || #named;)
        };
        // Unused bindings would warn in the user's crate when no field is injected.
        let (needs_binding, cx_binding) = if injected().next().is_some() {
            (quote!(__hosted_needs), quote!(__hosted_cx))
        } else {
            (quote!(_), quote!(_))
        };
        quote! {
            #[automatically_derived]
            impl #private::Construct for #ident {
                fn declare(#needs_binding: &mut #private::Dependencies) {
                    #(#declarations)*
                    #tie
                }

                async fn construct(
                    #cx_binding: &#private::RunContext,
                ) -> ::core::result::Result<Self, #private::InjectError> {
                    ::core::result::Result::Ok(#construction)
                }
            }
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

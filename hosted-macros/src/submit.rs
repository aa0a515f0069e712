//! How an annotated item reaches the host: a constructor placed in the executable's
//! initialisation section submits its registration before `main`, as `inventory` does, but
//! through one generic function of the runtime instead of a node and a function per item.

use proc_macro2::TokenStream;
use quote::quote;

/// The static placing `constructor` (an `extern "C" fn()` of the runtime, instantiated for this
/// item) where the platform runs it before `main`.
pub(crate) fn constructor(private: &TokenStream, constructor: &TokenStream) -> TokenStream {
    quote! {
        #[used]
        #[cfg_attr(
            any(
                target_os = "linux",
                target_os = "android",
                target_os = "dragonfly",
                target_os = "freebsd",
                target_os = "haiku",
                target_os = "illumos",
                target_os = "netbsd",
                target_os = "nto",
                target_os = "openbsd",
                target_os = "redox",
                target_os = "vxworks",
                target_os = "none",
            ),
            unsafe(link_section = ".init_array")
        )]
        #[cfg_attr(
            any(target_os = "macos", target_os = "ios"),
            unsafe(link_section = "__DATA,__mod_init_func,mod_init_funcs")
        )]
        #[cfg_attr(windows, unsafe(link_section = ".CRT$XCU"))]
        static __HOSTED: #private::Constructor = #constructor;
    }
}

/// A registration whose `register` function body is `body` (adding to `registry`), submitted
/// through the runtime's generic constructor.
pub(crate) fn registration(private: &TokenStream, body: &TokenStream) -> TokenStream {
    let constructor = constructor(private, &quote!(#private::submit::<__HostedItem>));
    quote! {
        struct __HostedItem;

        #[automatically_derived]
        impl #private::Register for __HostedItem {
            const CRATE: &'static str = ::core::env!("CARGO_CRATE_NAME");

            fn register(registry: &mut #private::Registry) {
                #body
            }
        }

        #constructor
    }
}

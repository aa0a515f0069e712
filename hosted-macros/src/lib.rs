//! Attribute macros of the [`hosted`](https://docs.rs/hosted) crate. Depend on `hosted`, which
//! re-exports them; the documentation lives there.

mod args;
mod construct;
mod cron;
mod diagnostics;
mod duration;
mod duration_grammar;
mod edit_distance;
mod hosted_service;
mod injection;
mod lockfile;
mod queued;
mod routes;
mod run;
mod service_args;
mod service_fn;
mod service_lifetime;
mod signature;
mod submit;
mod timed;
mod values;

use proc_macro::TokenStream;

/// Registers a hosted service: an `async fn` run as a background service, or a struct that
/// implements `HostedService`. See the `hosted` crate's documentation.
#[proc_macro_attribute]
pub fn hosted_service(args: TokenStream, item: TokenStream) -> TokenStream {
    diagnostics::one_role("hosted_service", item.into(), |item| {
        hosted_service::expand(args.into(), item)
    })
    .into()
}

/// Registers a queued service: an `async fn` whose first parameter is the item, run for each
/// item of a bounded queue. See the `hosted` crate's documentation.
#[proc_macro_attribute]
pub fn queued(args: TokenStream, item: TokenStream) -> TokenStream {
    diagnostics::one_role("queued", item.into(), |item| {
        queued::expand(args.into(), item)
    })
    .into()
}

/// The whole `main` of a hosted application. See the `hosted` crate's documentation.
#[proc_macro]
pub fn run(input: TokenStream) -> TokenStream {
    run::expand(input.into()).into()
}

/// Registers a type, or a factory function's value, as a singleton. See the `hosted` crate's
/// documentation.
#[proc_macro_attribute]
pub fn singleton(args: TokenStream, item: TokenStream) -> TokenStream {
    diagnostics::one_role("singleton", item.into(), |item| {
        service_lifetime::expand(
            service_lifetime::ServiceLifetime::Singleton,
            args.into(),
            item,
        )
    })
    .into()
}

/// Registers a type, or a factory function's value, as scoped: one per run. See the `hosted`
/// crate's documentation.
#[proc_macro_attribute]
pub fn scoped(args: TokenStream, item: TokenStream) -> TokenStream {
    diagnostics::one_role("scoped", item.into(), |item| {
        service_lifetime::expand(service_lifetime::ServiceLifetime::Scoped, args.into(), item)
    })
    .into()
}

/// Registers a type, or a factory function's value, as transient: a new one each time. See the
/// `hosted` crate's documentation.
#[proc_macro_attribute]
pub fn transient(args: TokenStream, item: TokenStream) -> TokenStream {
    diagnostics::one_role("transient", item.into(), |item| {
        service_lifetime::expand(
            service_lifetime::ServiceLifetime::Transient,
            args.into(),
            item,
        )
    })
    .into()
}

/// Registers a timed service: an `async fn` run on a schedule. See the `hosted` crate's
/// documentation.
#[proc_macro_attribute]
pub fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    diagnostics::one_role("timed", item.into(), |item| {
        timed::expand(args.into(), item)
    })
    .into()
}

/// Contributes a function's routes to the web server (the `web` feature of `hosted`). See the
/// `hosted` crate's documentation.
#[proc_macro_attribute]
pub fn routes(args: TokenStream, item: TokenStream) -> TokenStream {
    routes::expand(args.into(), item.into()).into()
}

//! The `main` that `hosted::run!()` stands for: the host's entry point with what the features
//! compiled in add to it. At the crate's root, above every concept, because it assembles them.

use crate::host::HostBuilder;
use crate::host::entry::{ListingHook, MainOptions};

/// What the crate's own features contribute to `--list`, `--check` and `--migrate`.
static FEATURE_HOOKS: &[ListingHook] = &[
    #[cfg(feature = "postgres")]
    crate::durable::COMMAND_HOOK,
];

/// Not public API, used by generated code: the body of `hosted::run!()`, with the host
/// lifetimes of the features compiled in (systemd's) and their hooks (the durable store's).
/// Reached as `hosted::run_main`, the name a compile error about `run!(configure = …)` shows.
pub fn run_main(options: MainOptions, configure: impl FnOnce(HostBuilder) -> HostBuilder) -> ! {
    crate::host::entry::run_main(options, FEATURE_HOOKS, |builder| {
        #[cfg(feature = "systemd")]
        let builder = builder.lifetime(crate::systemd::Systemd::new());
        with_feature_services(configure(builder))
    })
}

/// The services the features compiled in add when the configuration asks for them (the
/// standalone metrics listener for `metrics.listen`), after the application's own `configure`.
fn with_feature_services(builder: HostBuilder) -> HostBuilder {
    #[cfg(feature = "prometheus")]
    {
        crate::prometheus::install_configured(builder)
    }
    #[cfg(not(feature = "prometheus"))]
    {
        builder
    }
}

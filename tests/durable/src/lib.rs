//! What the durable tests share: a configuration on the test binary's server, in a schema of
//! the test's own.

use std::time::Duration;

use hosted::durable::DurableConfig;

/// A configuration for `test` on the test binary's server, in a fresh schema; `None` (after a
/// message) when no server can be had outside CI.
///
/// # Panics
/// When the harness hands out a URL that does not parse, or (in CI) no server can be had.
#[must_use]
pub fn config(test: &str) -> Option<DurableConfig> {
    let server = hosted_pg_harness::server()?;
    let mut config = DurableConfig::new(server.url()).expect("the harness's URL is valid");
    config.schema = server.schema(test);
    config.pool_size = 4;
    config.poll_interval = Duration::from_millis(200);
    config.sweep_interval = Duration::from_millis(200);
    Some(config)
}

/// The TOML of a `[durable]` section for `config`.
#[must_use]
pub fn toml(config: &DurableConfig) -> String {
    format!(
        "[durable]\nurl = \"{}\"\nschema = \"{}\"\npool_size = {}\nlease = \"{}ms\"\npoll_interval = \"{}ms\"\nsweep_interval = \"{}ms\"\n",
        config.url.expose(),
        config.schema,
        config.pool_size,
        config.lease.as_millis(),
        config.poll_interval.as_millis(),
        config.sweep_interval.as_millis(),
    )
}

/// Polls `check` every 20 ms until it holds, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

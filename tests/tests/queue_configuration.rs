//! Configuration overrides a queue's arguments: the effective values are the ones the queue
//! runs with, the seed's flat `QueueCapacity` key works through an alias, and a bad value stops
//! the build with the key named.

use std::time::Duration;

use hosted::config::ConfigSources;
use hosted::di::RunContext;
use hosted::host::HostBuilder;
use hosted::queue::{DeadLetters, FullMode, QueueOptions};
use hosted::registry::ServiceDescriptor;
use hosted::{Host, Queue};

fn queue() -> ServiceDescriptor {
    ServiceDescriptor::queued(
        "app::outbox",
        QueueOptions::new(100).with_timeout(Duration::from_secs(30)),
        |_: u32, _: RunContext| async {},
        DeadLetters::log(),
    )
}

fn configured(toml: &str) -> HostBuilder {
    let configuration = ConfigSources::new()
        .toml("test.toml", toml)
        .load()
        .expect("readable configuration");
    Host::builder()
        .add_service(queue())
        .configuration(configuration)
}

#[tokio::test]
async fn configured_values_replace_the_attributes_literals() {
    let host = configured(
        r#"
        [services.app.outbox]
        capacity = 3
        workers = 2
        full_mode = "reject"
        retries = 4
        retry_backoff = "250ms"
        timeout = "0s"
        "#,
    )
    .build()
    .expect("a valid host");
    let listed: Vec<(String, String)> = host
        .settings()
        .into_iter()
        .filter(|line| line.key.starts_with("services.app.outbox."))
        .map(|line| (line.key, line.value))
        .collect();
    assert!(
        listed.contains(&("services.app.outbox.capacity".to_owned(), "3".to_owned())),
        "{listed:?}"
    );
    let host = host.start().await.expect("started");
    let queue = host.get::<Queue<u32>>().await.unwrap();
    let options = queue.options();
    assert_eq!(queue.capacity(), 3);
    assert_eq!(options.workers(), 2);
    assert_eq!(options.full_mode(), FullMode::Reject);
    assert_eq!(options.retries(), 4);
    assert_eq!(options.retry_backoff(), Duration::from_millis(250));
    assert_eq!(options.timeout(), None, "0s means no limit");
    for item in 0..3 {
        queue.try_send(item).unwrap();
    }
    assert!(host.stop().await.is_success());
}

#[tokio::test]
async fn the_seeds_queue_capacity_key_sets_the_capacity_through_an_alias() {
    let host = configured("QueueCapacity = 7\n")
        .config_alias("QueueCapacity", "services.app.outbox.capacity")
        .build()
        .expect("a valid host")
        .start()
        .await
        .expect("started");
    let queue = host.get::<Queue<u32>>().await.unwrap();
    assert_eq!(queue.capacity(), 7);
    assert!(host.stop().await.is_success());
}

#[test]
fn a_capacity_of_zero_in_configuration_stops_the_build() {
    let error = configured("[services.app.outbox]\ncapacity = 0\n")
        .build()
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("capacity"), "{message}");
    assert!(message.contains("test.toml"), "{message}");
}

#[test]
fn impossible_options_given_in_code_are_build_problems_not_panics() {
    let error = Host::builder()
        .add_service(ServiceDescriptor::queued(
            "app::empty",
            QueueOptions::new(0).with_workers(0),
            |_: u32, _: RunContext| async {},
            DeadLetters::log(),
        ))
        .build()
        .expect_err("a queue of nothing");
    let text = error.to_string();
    assert!(
        text.contains("`services.app.empty.capacity`: expected a whole number of at least 1; 0 is out of range"),
        "{text}"
    );
    assert!(text.contains("`services.app.empty.workers`"), "{text}");
}

//! Bad input at the command line, on the store's worker binary: `--check` reports a store that
//! cannot be reached, and a store whose schema is at another version, with the keys at fault,
//! their sources, the fix and the exit code, and never shows the store's secret.

use std::process::Output;

use hosted::durable::{EXIT_SCHEMA_VERSION, EXIT_UNREACHABLE};

use crate::store::{Settings, Store, Tuning, env_var};

/// Runs the store's worker binary with `args`, configured through the environment by `settings`.
async fn run<S: Store>(store: &S, settings: &Settings, args: &[&str]) -> (Option<i32>, String) {
    let output: Output = tokio::process::Command::new(store.worker_binary())
        .args(args)
        .envs(settings.env())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("the worker binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

/// Bad input: an unreachable store.
pub async fn check_reports_an_unreachable_store_with_its_key_its_source_and_the_secret_masked<
    S: Store,
>() {
    let Some(store) = S::fresh("check_unreachable", Tuning::default()).await else {
        return;
    };
    let unreachable = store.unreachable();
    let key = &unreachable.key;
    let (code, text) = run(&store, &unreachable.settings, &["--check"]).await;
    assert_eq!(code, Some(EXIT_UNREACHABLE), "{text}");
    assert_eq!(EXIT_UNREACHABLE, 69, "EX_UNAVAILABLE");
    assert!(text.contains(&format!("`{key}`")), "the key: {text}");
    assert!(
        text.contains(&format!("from environment variable {}", env_var(key))),
        "its source: {text}"
    );
    assert!(text.contains("unreachable"), "{text}");
    assert!(text.contains(&unreachable.masked), "{text}");
    assert!(
        !text.contains(&unreachable.secret),
        "the secret masked: {text}"
    );
    assert!(!text.contains("ok: "), "nothing reported sound: {text}");

    // The same from the command line: the argument as written names the source, masked.
    let value = unreachable
        .settings
        .0
        .iter()
        .find(|(known, _)| known == key)
        .map(|(_, value)| value.clone())
        .expect("the fixture sets its key");
    let argument = format!("--{key}={value}");
    let (code, text) = run(
        &store,
        &unreachable.settings.clone().without(key),
        &["--check", &argument],
    )
    .await;
    assert_eq!(code, Some(EXIT_UNREACHABLE), "{text}");
    assert!(
        text.contains(&format!("from command-line argument --{key}=")),
        "{text}"
    );
    assert!(text.contains(&unreachable.masked), "{text}");
    assert!(
        !text.contains(&unreachable.secret),
        "the secret masked: {text}"
    );
}

/// Bad input: a store whose schema is behind this build (with `migrate = "manual"`) or ahead
/// of it (whatever `migrate` says); a current one passes.
pub async fn check_reports_a_schema_at_another_version_with_its_keys_and_the_fix<S: Store>() {
    let Some(store) = S::fresh("check_version", Tuning::default()).await else {
        return;
    };
    let settings = store.settings();
    let version = S::SCHEMA_VERSION;
    let (code, text) = run(&store, &settings, &["--check"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("is reachable"), "{text}");
    assert!(text.contains(&format!("at version {version}")), "{text}");

    // Behind: fine with `auto` (the start migrates it), not with `manual`.
    store.set_schema_version(0).await;
    let (code, text) = run(&store, &settings, &["--check"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("migrated to {version} at start")),
        "{text}"
    );
    let manual = settings.clone().with("durable.migrate", "manual");
    let (code, text) = run(&store, &manual, &["--check"]).await;
    assert_eq!(code, Some(EXIT_SCHEMA_VERSION), "{text}");
    assert_eq!(EXIT_SCHEMA_VERSION, 65, "EX_DATAERR");
    assert!(text.contains("at version 0"), "{text}");
    assert!(
        text.contains(&format!(
            "`durable.migrate` = `manual` (from environment variable {})",
            env_var("durable.migrate")
        )),
        "the key and its source: {text}"
    );
    assert!(text.contains("--migrate"), "the fix is named: {text}");

    // Ahead (migrated by a newer build): refused whatever `migrate` says.
    let newer = version + 1;
    store.set_schema_version(newer).await;
    for settings in [&settings, &manual] {
        let (code, text) = run(&store, settings, &["--check"]).await;
        assert_eq!(code, Some(EXIT_SCHEMA_VERSION), "{text}");
        assert!(text.contains(&format!("version {newer}")), "{text}");
        assert!(
            text.contains("migrated by a newer build"),
            "the fix: {text}"
        );
        assert!(
            text.contains(&format!(
                "`durable.schema` = `{}` (from environment variable {})",
                settings
                    .0
                    .iter()
                    .find(|(key, _)| key == "durable.schema")
                    .map_or("hosted", |(_, value)| value.as_str()),
                env_var("durable.schema")
            )),
            "the key and its source: {text}"
        );
    }
}

//! Configuration: precedence across the five sources, environment files, the `__` mapping,
//! every error message with its source, `enabled = false`, host options, aliases, typed
//! sections and secrets.
//!
//! Each test runs in a `figment::Jail`: its own working directory and environment variables,
//! restored afterwards, one test at a time.
#![allow(
    clippy::result_large_err,
    reason = "`figment::Jail` closures return figment's own error type"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use figment::Jail;
use hosted::Host;
use hosted::config::ConfigSources;
use hosted::di::RunContext;
use hosted::host::{BuildError, HostBuilder};
use hosted::registry::ServiceDescriptor;
use hosted::service::{Origin, Setting, SettingKind, SettingValue};

/// A service with a setting of each kind, as an attribute would declare them.
fn ticker() -> ServiceDescriptor {
    ServiceDescriptor::background("app::ticker", |_: RunContext| async {})
        .setting(Setting::new(
            "every",
            SettingKind::Duration {
                min: Duration::from_millis(1),
            },
            SettingValue::Duration(Duration::from_secs(5)),
        ))
        .setting(Setting::new(
            "capacity",
            SettingKind::Integer {
                min: 1,
                max: i64::MAX,
            },
            SettingValue::Integer(100),
        ))
        .setting(Setting::new(
            "overlap",
            SettingKind::Choice(&["skip", "coalesce", "concurrent"]),
            SettingValue::Text("coalesce".to_owned()),
        ))
}

fn other() -> ServiceDescriptor {
    ServiceDescriptor::background("app::other", |_: RunContext| async {})
}

fn builder(sources: ConfigSources) -> HostBuilder {
    let configuration = sources.load().expect("readable configuration");
    Host::builder()
        .add_service(ticker())
        .add_service(other())
        .configuration(configuration)
}

/// The effective value and origin of a setting, as `--list` shows them.
fn setting(host: &Host, key: &str) -> (String, Origin) {
    let line = host
        .settings()
        .into_iter()
        .find(|line| line.key == key)
        .unwrap_or_else(|| panic!("no setting {key}"));
    (line.value, line.origin)
}

fn file(name: &str, line: usize) -> Origin {
    Origin::File {
        path: PathBuf::from(name),
        line: Some(line),
    }
}

fn problems(error: &BuildError) -> String {
    error.to_string()
}

#[test]
fn precedence_runs_from_the_attribute_to_the_command_line() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "hosted.toml",
            "[services.app.ticker]\ncapacity = 10\nevery = \"2s\"\n",
        )?;
        jail.create_file(
            "hosted.staging.toml",
            "[services.app.ticker]\nevery = \"3s\"\n",
        )?;
        jail.set_env("HOSTED_ENVIRONMENT", "staging");

        // Attribute literal < hosted.toml < hosted.staging.toml.
        let host = builder(ConfigSources::new()).build().unwrap();
        assert_eq!(
            setting(&host, "services.app.ticker.every"),
            ("3s".into(), file("hosted.staging.toml", 2))
        );
        assert_eq!(
            setting(&host, "services.app.ticker.capacity"),
            ("10".into(), file("hosted.toml", 2))
        );
        assert_eq!(
            setting(&host, "services.app.ticker.overlap"),
            ("\"coalesce\"".into(), Origin::Default)
        );

        // < environment variables, with `__` between sections.
        jail.set_env("HOSTED_SERVICES__APP__TICKER__EVERY", "4s");
        let host = builder(ConfigSources::new()).build().unwrap();
        assert_eq!(
            setting(&host, "services.app.ticker.every"),
            (
                "4s".into(),
                Origin::Environment {
                    variable: "HOSTED_SERVICES__APP__TICKER__EVERY".into()
                }
            )
        );

        // < command-line arguments.
        let host = builder(
            ConfigSources::new()
                .argument("--services.app.ticker.every=1m30s")
                .unwrap(),
        )
        .build()
        .unwrap();
        assert_eq!(
            setting(&host, "services.app.ticker.every"),
            (
                "1m30s".into(),
                Origin::CommandLine {
                    argument: "--services.app.ticker.every=1m30s".into()
                }
            )
        );
        let info = host
            .services()
            .find(|info| info.name() == "app::ticker")
            .unwrap();
        assert_eq!(
            info.settings().duration("every"),
            Some(Duration::from_secs(90))
        );
        Ok(())
    });
}

#[test]
fn the_environment_picks_its_file() {
    Jail::expect_with(|jail| {
        jail.create_file("hosted.toml", "[host]\nshutdown_timeout = \"7s\"\n")?;
        jail.create_file("hosted.test.toml", "[host]\nshutdown_timeout = \"1s\"\n")?;
        jail.create_file(
            "hosted.production.toml",
            "[host]\nshutdown_timeout = \"30s\"\n",
        )?;
        let host = builder(ConfigSources::new()).build().unwrap();
        assert_eq!(
            setting(&host, "host.shutdown_timeout"),
            ("30s".into(), file("hosted.production.toml", 2))
        );
        let host = builder(ConfigSources::new().environment("test"))
            .build()
            .unwrap();
        assert_eq!(
            setting(&host, "host.shutdown_timeout"),
            ("1s".into(), file("hosted.test.toml", 2))
        );
        jail.set_env("HOSTED_ENVIRONMENT", "nowhere");
        let host = builder(ConfigSources::new()).build().unwrap();
        assert_eq!(
            setting(&host, "host.shutdown_timeout"),
            ("7s".into(), file("hosted.toml", 2))
        );
        Ok(())
    });
}

#[test]
fn values_set_in_code_are_defaults_that_configuration_overrides() {
    Jail::expect_with(|jail| {
        let host = builder(ConfigSources::new())
            .shutdown_timeout(Duration::from_secs(12))
            .build()
            .unwrap();
        assert_eq!(
            setting(&host, "host.shutdown_timeout"),
            ("12s".into(), Origin::Code)
        );
        jail.set_env("HOSTED_HOST__SHUTDOWN_TIMEOUT", "20s");
        let host = builder(ConfigSources::new())
            .shutdown_timeout(Duration::from_secs(12))
            .build()
            .unwrap();
        assert_eq!(setting(&host, "host.shutdown_timeout").0, "20s");
        Ok(())
    });
}

#[test]
fn every_mistake_names_the_key_its_source_and_the_form_expected() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "hosted.toml",
            "[host]\nshutdown_timeout = 5\n\n[services.app.ticker]\ncapacity = \"many\"\nevry = \"1s\"\noverlap = \"sometimes\"\n\n[services.app.tikcer]\nevery = \"1s\"\n",
        )?;
        jail.set_env("HOSTED_SERVICES__APP__TICKER__EVERY", "soon");
        let error = builder(ConfigSources::new())
            .build()
            .expect_err("bad configuration");
        assert_eq!(error.exit_code(), hosted::host::EXIT_CONFIG);
        let text = problems(&error);
        for expected in [
            "`host.shutdown_timeout` (hosted.toml:2): expected a duration like \"250ms\", \"5s\" or \"1m30s\"; found the number 5 without a unit",
            "`services.app.ticker.capacity` (hosted.toml:5): expected a whole number of at least 1; `many` is not a whole number",
            "`services.app.ticker.evry` (hosted.toml:6): service `app::ticker` has no setting `evry`; its settings are `enabled`, `on_failure`, `max_restarts`, `backoff`, `max_backoff`, `every`, `capacity`, `overlap`; did you mean `every`?",
            "`services.app.ticker.overlap` (hosted.toml:7): expected one of \"skip\", \"coalesce\", \"concurrent\"; \"sometimes\" is not one of them",
            "`services.app.tikcer` (hosted.toml:9): no service is named `app::tikcer`; did you mean `app::ticker` (section `services.app.ticker`)?",
            "`services.app.ticker.every` (environment variable HOSTED_SERVICES__APP__TICKER__EVERY): expected a duration of at least 1ms, like \"250ms\", \"5s\" or \"1m30s\"",
        ] {
            assert!(text.contains(expected), "missing:\n{expected}\nin:\n{text}");
        }
        Ok(())
    });
}

#[test]
fn invalid_toml_stops_with_the_file_and_line() {
    Jail::expect_with(|jail| {
        jail.create_file("hosted.toml", "[host]\nshutdown_timeout = \"5s\n")?;
        let error = ConfigSources::new().load().expect_err("invalid TOML");
        assert!(
            error
                .to_string()
                .starts_with("hosted.toml:2 is not valid TOML"),
            "{error}"
        );
        let error = ConfigSources::new()
            .file("missing.toml")
            .load()
            .expect_err("missing file");
        assert_eq!(
            error.to_string(),
            "the configuration file `missing.toml` does not exist"
        );
        Ok(())
    });
}

/// Alike services share one list of settings (see `HostBuilder::build`); configuring one of
/// them changes that one only, whether it comes first, last or between the others.
#[test]
fn configuring_one_of_many_alike_services_leaves_the_others_alone() {
    let alike = |name: &str| {
        ServiceDescriptor::background(name.to_owned(), |_: RunContext| async {}).setting(
            Setting::new(
                "every",
                SettingKind::Duration {
                    min: Duration::from_millis(1),
                },
                SettingValue::Duration(Duration::from_secs(5)),
            ),
        )
    };
    Jail::expect_with(|jail| {
        jail.create_file(
            "hosted.toml",
            "[services.app.t0]\nevery = \"1s\"\n\n[services.app.t5]\nevery = \"2s\"\n\n[services.app.t9]\nevery = \"3s\"\n",
        )?;
        let configuration = ConfigSources::new().load().expect("readable configuration");
        let mut builder = Host::builder().configuration(configuration);
        for index in 0..10 {
            builder = builder.add_service(alike(&format!("app::t{index}")));
        }
        let host = builder.build().unwrap();
        let every: Vec<(String, Duration)> = host
            .services()
            .map(|info| {
                let every = info.settings().duration("every").unwrap();
                (info.name().to_owned(), every)
            })
            .collect();
        let expected: Vec<(String, Duration)> = (0..10)
            .map(|index| {
                let every = match index {
                    0 => Duration::from_secs(1),
                    5 => Duration::from_secs(2),
                    9 => Duration::from_secs(3),
                    _ => Duration::from_secs(5),
                };
                (format!("app::t{index}"), every)
            })
            .collect();
        assert_eq!(every, expected);
        Ok(())
    });
}

#[test]
fn a_disabled_service_does_not_run() {
    Jail::expect_with(|jail| {
        jail.create_file("hosted.toml", "[services.app.other]\nenabled = false\n")?;
        let host = builder(ConfigSources::new()).build().unwrap();
        let names: Vec<&str> = host
            .services()
            .map(hosted::service::ServiceInfo::name)
            .collect();
        assert_eq!(names, ["app::ticker"]);
        Ok(())
    });
}

#[test]
fn the_failure_policy_is_configured_per_service_and_for_the_host() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "hosted.toml",
            "[host]\non_failure = \"ignore\"\n\n[services.app.ticker]\non_failure = \"restart\"\nmax_restarts = 2\nbackoff = \"100ms\"\n",
        )?;
        let host = builder(ConfigSources::new()).build().unwrap();
        let policy = |name: &str| {
            host.services()
                .find(|info| info.name() == name)
                .unwrap()
                .policy()
                .clone()
        };
        assert_eq!(
            policy("app::ticker"),
            hosted::FailurePolicy::Restart(
                hosted::service::RestartPolicy::new()
                    .with_max_restarts(2)
                    .with_backoff(Duration::from_millis(100))
            )
        );
        assert_eq!(policy("app::other"), hosted::FailurePolicy::Ignore);
        Ok(())
    });
}

#[test]
fn an_alias_sets_a_setting_unless_the_setting_is_configured_itself() {
    Jail::expect_with(|jail| {
        jail.create_file("hosted.toml", "QueueCapacity = 7\n")?;
        let aliased = |sources| {
            builder(sources)
                .config_alias("QueueCapacity", "services.app.ticker.capacity")
                .build()
                .unwrap()
        };
        let host = aliased(ConfigSources::new());
        assert_eq!(
            setting(&host, "services.app.ticker.capacity"),
            ("7".into(), file("hosted.toml", 1))
        );
        let host = aliased(
            ConfigSources::new()
                .argument("--services.app.ticker.capacity=9")
                .unwrap(),
        );
        assert_eq!(setting(&host, "services.app.ticker.capacity").0, "9");
        jail.set_env("HOSTED_QUEUECAPACITY", "0");
        let error = builder(ConfigSources::new())
            .config_alias("QueueCapacity", "services.app.ticker.capacity")
            .build()
            .expect_err("a capacity of 0");
        assert!(
            problems(&error).contains(
                "`queuecapacity` (environment variable HOSTED_QUEUECAPACITY): expected a whole number of at least 1"
            ),
            "{error}"
        );
        Ok(())
    });
}

/// A typed section, as a user writes it.
#[derive(Debug, serde::Deserialize)]
struct Mail {
    relay: String,
    #[serde(default = "default_port")]
    port: u16,
    password: hosted::Secret<String>,
}

fn default_port() -> u16 {
    25
}

impl hosted::Section for Mail {
    const KEY: &'static str = "mail";
    const SECRETS: &'static [&'static str] = &["password"];

    fn validate(&self) -> Result<(), String> {
        if self.relay.contains(' ') {
            return Err(format!("`relay` is not a host name: {:?}", self.relay));
        }
        Ok(())
    }
}

/// What the mailer saw: relay, port, password.
type Seen = Arc<std::sync::Mutex<Vec<(String, u16, String)>>>;

fn mailer(seen: &Seen) -> ServiceDescriptor {
    let seen = Arc::clone(seen);
    ServiceDescriptor::background("app::mailer", move |cx: RunContext| {
        let seen = Arc::clone(&seen);
        async move {
            let mail = cx.resolve::<hosted::Config<Mail>>().await?;
            seen.lock().unwrap().push((
                mail.relay.clone(),
                mail.port,
                mail.password.expose().clone(),
            ));
            Ok::<(), hosted::BoxError>(())
        }
    })
    .needs(<hosted::Config<Mail> as hosted::di::Inject>::declare)
}

#[test]
fn typed_sections_are_read_checked_masked_and_injected() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "hosted.toml",
            "[mail]\nrelay = \"smtp.example.com\"\npassword = \"from-file\"\n",
        )?;
        jail.set_env("HOSTED_MAIL__PASSWORD", "hunter2");
        jail.set_env("HOSTED_MAIL__PORT", "2525");
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let host = builder(ConfigSources::new())
            .add_service(mailer(&seen))
            .build()
            .unwrap();
        let listed: Vec<(String, String)> = host
            .settings()
            .into_iter()
            .filter(|line| line.key.starts_with("mail."))
            .map(|line| (line.key, line.value))
            .collect();
        assert!(
            listed.contains(&("mail.relay".into(), "\"smtp.example.com\"".into())),
            "{listed:?}"
        );
        assert!(
            listed.contains(&("mail.password".into(), "***".into())),
            "secrets never show: {listed:?}"
        );
        assert!(!format!("{listed:?}").contains("hunter2"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let running = host.start().await.unwrap();
            tokio::task::yield_now().await;
            assert!(running.stop().await.is_success());
        });
        assert_eq!(
            *seen.lock().unwrap(),
            [("smtp.example.com".to_owned(), 2525, "hunter2".to_owned())]
        );

        jail.set_env("HOSTED_MAIL__PORT", "lots");
        jail.create_file(
            "hosted.toml",
            "[mail]\nrelay = \"smtp example\"\npassword = \"x\"\n",
        )?;
        let error = builder(ConfigSources::new())
            .add_service(mailer(&seen))
            .build()
            .expect_err("a bad section");
        let text = problems(&error);
        assert!(
            text.contains("`mail.port` (environment variable HOSTED_MAIL__PORT): "),
            "{text}"
        );
        assert_eq!(error.exit_code(), hosted::host::EXIT_CONFIG);
        jail.set_env("HOSTED_MAIL__PORT", "25");
        let error = builder(ConfigSources::new())
            .add_service(mailer(&seen))
            .build()
            .expect_err("a relay with a space");
        assert!(
            problems(&error).contains("`mail`: `relay` is not a host name: \"smtp example\""),
            "{error}"
        );
        Ok(())
    });
}

#[test]
fn a_missing_section_reads_as_empty() {
    Jail::expect_with(|_| {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let error = builder(ConfigSources::new())
            .add_service(mailer(&seen))
            .build()
            .expect_err("`relay` has no default");
        assert!(
            problems(&error).contains("`mail`: missing field `relay`"),
            "{error}"
        );
        Ok(())
    });
}

/// A service that may do without the section: `Option<Config<Mail>>`.
fn optional_mailer(seen: &Arc<std::sync::Mutex<Vec<Option<String>>>>) -> ServiceDescriptor {
    let seen = Arc::clone(seen);
    ServiceDescriptor::background("app::maybe_mailer", move |cx: RunContext| {
        let seen = Arc::clone(&seen);
        async move {
            let mail = cx.resolve::<Option<hosted::Config<Mail>>>().await?;
            seen.lock()
                .unwrap()
                .push(mail.map(|mail| mail.relay.clone()));
            Ok::<(), hosted::BoxError>(())
        }
    })
    .needs(<Option<hosted::Config<Mail>> as hosted::di::Inject>::declare)
}

#[test]
fn an_optional_section_is_none_when_absent_and_read_and_checked_when_present() {
    Jail::expect_with(|jail| {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let run = |host: Host| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let running = host.start().await.unwrap();
                tokio::task::yield_now().await;
                assert!(running.stop().await.is_success());
            });
        };
        // Absent: `None`, and no problem about `relay`, which has no default.
        run(builder(ConfigSources::new())
            .add_service(optional_mailer(&seen))
            .build()
            .expect("no section, no problem"));
        // Present: read, and known (not a typo).
        jail.create_file(
            "hosted.toml",
            "[mail]\nrelay = \"smtp.example.com\"\npassword = \"x\"\n",
        )?;
        run(builder(ConfigSources::new())
            .add_service(optional_mailer(&seen))
            .build()
            .expect("a valid section"));
        assert_eq!(
            *seen.lock().unwrap(),
            [None, Some("smtp.example.com".to_owned())]
        );
        // Present but wrong: checked like any section.
        jail.create_file(
            "hosted.toml",
            "[mail]\nrelay = \"smtp example\"\npassword = \"x\"\n",
        )?;
        let error = builder(ConfigSources::new())
            .add_service(optional_mailer(&seen))
            .build()
            .expect_err("a relay with a space");
        assert!(
            problems(&error).contains("`relay` is not a host name"),
            "{error}"
        );
        Ok(())
    });
}

#[test]
fn a_top_level_key_nothing_reads_is_a_typo() {
    Jail::expect_with(|jail| {
        jail.create_file("hosted.toml", "[hots]\nshutdown_timeout = \"1s\"\n")?;
        jail.set_env("HOSTED_SERVICE__APP__TICKER__EVERY", "1s");
        let error = builder(ConfigSources::new()).build().expect_err("typos");
        let text = problems(&error);
        assert!(
            text.contains("`hots` (hosted.toml:1): nothing reads `hots`: the configuration has `host`, `services`; did you mean `host`?"),
            "{text}"
        );
        assert!(
            text.contains(
                "`service` (environment variable HOSTED_SERVICE): nothing reads `service`"
            ),
            "{text}"
        );
        assert!(text.contains("did you mean `services`?"), "{text}");
        Ok(())
    });
}

//! The operator's dashboard in a real headless Chromium: signed in through the application's own
//! authentication, the page shows the services, the timer and the queue, and its values change
//! without a reload; a screenshot is saved under `target/browser-artifacts/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`: installed with `apt-get` when missing and
//! running as root; with `CI=true` a browser that cannot start fails the test.

mod browser;

use self::browser::{browser, browser_installed, in_ci, profile_dir, start_driver};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use hosted_tests::process::{HANG, Process};

fn artifact(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The text of the field `field` in the card `card`. The page redraws a card on every event, so
/// an element found may be replaced before it is read: it is then found again, a bounded number
/// of times.
async fn field(page: &Client, card: &str, field: &str) -> String {
    let css = format!("[id=\"{card}\"] [data-field=\"{field}\"]");
    let mut last_error = None;
    for _ in 0..100 {
        match page.find(Locator::Css(&css)).await {
            Ok(element) => match element.text().await {
                Ok(text) => return text,
                Err(error) => last_error = Some(error),
            },
            Err(error) => last_error = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("`{css}` could not be read: {last_error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::too_many_lines,
    reason = "one browser session, read top to bottom: refused, signed in, live, on a phone"
)]
async fn the_dashboard_shows_live_values_without_a_reload() {
    if !browser_installed() {
        assert!(
            !in_ci(),
            "chromium and chromium-driver are missing and could not be installed"
        );
        eprintln!("skipped: chromium and chromium-driver are missing (not root, not CI)");
        return;
    }
    let mut app = Process::spawn(
        env!("CARGO_BIN_EXE_operations"),
        &["--web.bind=127.0.0.1:0", "--web.dashboard.enabled=true"],
    );
    let line = app.wait_for_line("listening on http://", HANG);
    let address = line
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let base = format!("http://{address}");

    let driver = start_driver();
    let profile = profile_dir("dashboard");
    let page = match browser(&driver, &profile).await {
        Ok(page) => page,
        Err(error) if !in_ci() => {
            eprintln!("skipped: chromium does not start here ({error})");
            return;
        }
        Err(error) => panic!("chromium does not start: {error}"),
    };
    // Without the session, the page and its event stream are refused.
    page.goto(&format!("{base}/livez")).await.unwrap();
    let refused = page
        .execute(
            "return Promise.all(['/hosted', '/hosted/events'].map((path) => \
             fetch(path).then((response) => response.status)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        refused,
        serde_json::json!([401, 401]),
        "served without the session"
    );
    page.goto(&format!("{base}/login")).await.unwrap();
    page.goto(&format!("{base}/hosted")).await.unwrap();
    let began = Instant::now();
    while page.find(Locator::Css("#live.on")).await.is_err() {
        assert!(began.elapsed() < HANG, "the event stream never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    page.execute("window.__loaded = true;", vec![])
        .await
        .unwrap();
    let ticks = field(&page, "timer-operations::heartbeat", "ticks").await;
    let processed = field(&page, "queue-operations::resize", "processed").await;
    let began = Instant::now();
    loop {
        let (now_ticks, now_processed) = (
            field(&page, "timer-operations::heartbeat", "ticks").await,
            field(&page, "queue-operations::resize", "processed").await,
        );
        if now_ticks != ticks && now_processed != processed {
            break;
        }
        assert!(
            began.elapsed() < HANG,
            "the values never changed: ticks {ticks} → {now_ticks}, processed {processed} → {now_processed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let same_page = page
        .execute("return window.__loaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(
        same_page,
        serde_json::Value::Bool(true),
        "the page was reloaded"
    );
    let state = page
        .find(Locator::Css("[id=\"service-operations::resize\"] .state"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(state, "running");
    // Every tenth image is corrupt: the queue's last error shows.
    let began = Instant::now();
    while page
        .find(Locator::Css("[id=\"service-operations::resize\"] .error"))
        .await
        .is_err()
    {
        assert!(began.elapsed() < HANG, "the last error never showed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Readable on a phone: no horizontal scrolling at 390 px.
    page.set_window_size(390, 844).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let overflow = page
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overflow,
        serde_json::Value::Bool(true),
        "the page scrolls sideways on a phone"
    );
    let png = page.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(artifact("dashboard-phone.png"), png).unwrap();
    page.set_window_size(1100, 900).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(artifact("dashboard.png"), page.screenshot().await.unwrap()).unwrap();

    page.close().await.unwrap();
    drop(driver);
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    let _ = std::fs::remove_dir_all(profile);
}

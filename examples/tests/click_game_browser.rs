//! Seed 001's game played in two real headless Chromium windows: two players register, click a
//! different number of times in one short round, and both pages show the winner, updated over
//! the hub. A screenshot of each page is saved under `target/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`: installed with `apt-get` when missing and
//! running as root; with `CI=true` a browser that cannot start fails the test.

mod browser;

use self::browser::{browser, browser_installed, in_ci, profile_dir, start_driver};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use hosted_tests::process::{HANG, Process};

async fn text(page: &Client, id: &str) -> String {
    page.find(Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until the element's text satisfies `ready`; returns it.
async fn wait_text(page: &Client, id: &str, ready: impl Fn(&str) -> bool) -> String {
    let began = Instant::now();
    loop {
        let current = text(page, id).await;
        if ready(&current) {
            return current;
        }
        assert!(began.elapsed() < HANG, "#{id} stayed {current:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn register(page: &Client, base: &str, name: &str) {
    page.goto(base).await.unwrap();
    page.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    page.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("correct horse")
        .await
        .unwrap();
    page.find(Locator::Id("register"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(page, "status", |status| status == "connected").await;
    assert_eq!(text(page, "player").await, name);
}

async fn click(page: &Client, times: usize) {
    let button = page.find(Locator::Id("click")).await.unwrap();
    for _ in 0..times {
        button.click().await.unwrap();
    }
}

fn artifact(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_in_two_browsers_see_the_same_winner() {
    if !browser_installed() {
        assert!(
            !in_ci(),
            "chromium and chromium-driver are missing and could not be installed"
        );
        eprintln!("skipped: chromium and chromium-driver are missing (not root, not CI)");
        return;
    }
    let database =
        std::env::temp_dir().join(format!("hosted-click-browser-{}.db", std::process::id()));
    let mut game = Process::spawn(
        env!("CARGO_BIN_EXE_click_game"),
        &[
            "--web.bind=127.0.0.1:0",
            &format!("--game.database={}", database.display()),
            "--services.click_game.rounds.every=3s",
        ],
    );
    let line = game.wait_for_line("listening on http://", HANG);
    let address = line
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let base = format!("http://{address}/");

    let driver = start_driver();
    let profiles = [profile_dir("ada"), profile_dir("bob")];
    let ada = match browser(&driver, &profiles[0]).await {
        Ok(ada) => ada,
        Err(error) if !in_ci() => {
            eprintln!("skipped: chromium does not start here ({error})");
            return;
        }
        Err(error) => panic!("chromium does not start: {error}"),
    };
    let bob = browser(&driver, &profiles[1])
        .await
        .expect("a second browser");
    register(&ada, &base, "ada").await;
    register(&bob, &base, "bob").await;

    // Line up with the start of a round: the result shown changes when one ends.
    let before = text(&ada, "result").await;
    wait_text(&ada, "result", |result| result != before).await;
    click(&ada, 5).await;
    click(&bob, 2).await;
    wait_text(&ada, "score", |score| score == "5").await;
    wait_text(&bob, "score", |score| score == "2").await;

    let winner = |result: &str| result.contains("ada won with 5 clicks");
    let on_ada = wait_text(&ada, "result", winner).await;
    let on_bob = wait_text(&bob, "result", winner).await;
    assert_eq!(on_ada, on_bob);
    assert_eq!(
        text(&bob, "score").await,
        "0",
        "the new round starts at zero"
    );

    for (page, name) in [(&ada, "ada"), (&bob, "bob")] {
        let png = page.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::write(artifact(&format!("click_game-{name}.png")), png).unwrap();
    }
    ada.close().await.unwrap();
    bob.close().await.unwrap();
    drop(driver);
    game.signal("TERM");
    assert_eq!(game.wait_exit(HANG), 0, "{}", game.transcript());
    for profile in profiles {
        let _ = std::fs::remove_dir_all(profile);
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
}

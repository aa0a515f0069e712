//! Dependency injection against the same work written by hand, in one run.
//!
//! Per iteration: open a scope, resolve three scoped values (one depending on another) and two
//! singletons, end the scope. By hand: construct the three values with `Arc::new` and clone the
//! two singleton `Arc`s. Both run on the same current-thread runtime, interleaved in rounds, and
//! the report gives the median time per iteration of each and their ratio.
//!
//! ```sh
//! cargo bench -p hosted-tests --bench injection
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hosted::{Host, ScopeExit, ScopeFactory};

struct Settings {
    retries: u32,
}

#[hosted::singleton]
fn settings() -> Settings {
    Settings { retries: 3 }
}

struct Pool {
    size: u32,
}

#[hosted::singleton]
fn pool() -> Pool {
    Pool { size: 8 }
}

struct Connection {
    pool_size: u32,
}

#[hosted::scoped]
fn connection(pool: Arc<Pool>) -> Connection {
    Connection {
        pool_size: pool.size,
    }
}

struct UnitOfWork {
    connection: Arc<Connection>,
}

#[hosted::scoped]
fn unit_of_work(connection: Arc<Connection>) -> UnitOfWork {
    UnitOfWork { connection }
}

struct Clock {
    offset: u64,
}

#[hosted::scoped]
fn clock() -> Clock {
    Clock { offset: 1 }
}

const ITERATIONS: u32 = 100_000;
const ROUNDS: usize = 15;

async fn with_hosted(scopes: &ScopeFactory) -> u64 {
    let mut sum = 0_u64;
    for _ in 0..ITERATIONS {
        let scope = scopes.create_scope();
        let unit = scope
            .resolve::<Arc<UnitOfWork>>()
            .await
            .expect("registered");
        let connection = scope
            .resolve::<Arc<Connection>>()
            .await
            .expect("registered");
        let clock = scope.resolve::<Arc<Clock>>().await.expect("registered");
        let settings = scope.resolve::<Arc<Settings>>().await.expect("registered");
        let pool = scope.resolve::<Arc<Pool>>().await.expect("registered");
        sum += u64::from(
            unit.connection.pool_size + connection.pool_size + settings.retries + pool.size,
        ) + clock.offset;
        drop((unit, connection, clock, settings, pool));
        scope.end(ScopeExit::Succeeded).await;
    }
    sum
}

fn by_hand(settings: &Arc<Settings>, pool: &Arc<Pool>) -> u64 {
    let mut sum = 0_u64;
    for _ in 0..ITERATIONS {
        let connection = Arc::new(Connection {
            pool_size: black_box(pool).size,
        });
        let unit = Arc::new(UnitOfWork {
            connection: Arc::clone(&connection),
        });
        let clock = Arc::new(Clock { offset: 1 });
        let settings = Arc::clone(black_box(settings));
        let pool = Arc::clone(black_box(pool));
        sum += u64::from(
            unit.connection.pool_size + connection.pool_size + settings.retries + pool.size,
        ) + clock.offset;
        drop(black_box((unit, connection, clock, settings, pool)));
    }
    sum
}

fn per_iteration(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e9 / f64::from(ITERATIONS)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let running = Host::builder()
            .discover()
            .build()
            .expect("a valid host")
            .start()
            .await
            .expect("a clean start");
        let scopes = running.scope_factory();
        let settings = running.get::<Settings>().await.expect("registered");
        let pool = running.get::<Pool>().await.expect("registered");

        // One side alone, for instruction counts under callgrind:
        // `INJECTION_ONLY=hosted valgrind --tool=callgrind target/release/deps/injection-*`.
        match std::env::var("INJECTION_ONLY").as_deref() {
            Ok("hosted") => {
                black_box(with_hosted(&scopes).await);
                return;
            }
            Ok("hand") => {
                black_box(by_hand(&settings, &pool));
                return;
            }
            Ok("scope") => {
                // An empty scope opened and ended: the part of the cost no resolution changes.
                for _ in 0..ITERATIONS {
                    let scope = scopes.create_scope();
                    scope.end(ScopeExit::Succeeded).await;
                }
                return;
            }
            Ok("none") => return,
            _ => {}
        }

        let (mut hosted_times, mut hand_times) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            // Alternate which goes first so neither always runs on a warmer cache.
            let mut measure_hosted = async || {
                let began = Instant::now();
                black_box(with_hosted(&scopes).await);
                hosted_times.push(per_iteration(began.elapsed()));
            };
            if round % 2 == 0 {
                measure_hosted().await;
                let began = Instant::now();
                black_box(by_hand(&settings, &pool));
                hand_times.push(per_iteration(began.elapsed()));
            } else {
                let began = Instant::now();
                black_box(by_hand(&settings, &pool));
                hand_times.push(per_iteration(began.elapsed()));
                measure_hosted().await;
            }
        }
        if std::env::var_os("INJECTION_BREAKDOWN").is_some() {
            breakdown(&scopes).await;
        }
        let hosted = median(&mut hosted_times);
        let hand = median(&mut hand_times);
        println!("scope + 3 scoped + 2 singletons, median of {ROUNDS} rounds of {ITERATIONS}:");
        println!("  hosted      {hosted:8.1} ns/iteration");
        println!("  by hand     {hand:8.1} ns/iteration");
        println!("  ratio       {:8.2}x (target <= 2.00x)", hosted / hand);
        assert!(running.stop().await.is_success());
    });
}

/// Time per step, to see where the cost goes (`INJECTION_BREAKDOWN=1`).
async fn breakdown(scopes: &ScopeFactory) {
    let began = Instant::now();
    for _ in 0..ITERATIONS {
        let scope = scopes.create_scope();
        scope.end(ScopeExit::Succeeded).await;
    }
    println!(
        "  scope only          {:8.1} ns",
        per_iteration(began.elapsed())
    );
    let began = Instant::now();
    for _ in 0..ITERATIONS {
        let scope = scopes.create_scope();
        black_box(scope.resolve::<Arc<Settings>>().await.expect("registered"));
        scope.end(ScopeExit::Succeeded).await;
    }
    println!(
        "  + one singleton     {:8.1} ns",
        per_iteration(began.elapsed())
    );
    let began = Instant::now();
    for _ in 0..ITERATIONS {
        let scope = scopes.create_scope();
        black_box(scope.resolve::<Arc<Clock>>().await.expect("registered"));
        scope.end(ScopeExit::Succeeded).await;
    }
    println!(
        "  + one scoped        {:8.1} ns",
        per_iteration(began.elapsed())
    );
    let began = Instant::now();
    for _ in 0..ITERATIONS {
        let scope = scopes.create_scope();
        black_box(scope.resolve::<Arc<Clock>>().await.expect("registered"));
        black_box(scope.resolve::<Arc<Clock>>().await.expect("registered"));
        scope.end(ScopeExit::Succeeded).await;
    }
    println!(
        "  + it again (cached) {:8.1} ns",
        per_iteration(began.elapsed())
    );
}

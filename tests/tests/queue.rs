//! Queued services registered by hand: backpressure, the full modes, ordering and parallelism,
//! retries on the paused clock, dead letters, panics, timeouts, and the stop that accounts for
//! every item.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hosted::di::{Provider, RunContext};
use hosted::host::RunningHost;
use hosted::queue::{DeadLetter, DeadLetters, FullMode, QueueOptions, QueueStats, SendError};
use hosted::registry::{Problem, ServiceDescriptor};
use hosted::service::RestartPolicy;
use hosted::{BoxError, FailurePolicy, Host, Queue, WorkQueue};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Values seen by handlers and hooks, in order.
#[derive(Clone)]
struct Seen<T>(Arc<Mutex<Vec<T>>>);

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T: Clone> Seen<T> {
    fn push(&self, value: T) {
        self.0.lock().unwrap().push(value);
    }

    fn all(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }
}

async fn start(service: ServiceDescriptor) -> RunningHost {
    Host::builder()
        .add_service(service)
        .build()
        .expect("a valid host")
        .start()
        .await
        .expect("the host starts")
}

/// A queue of `u32` whose handler records each item once a permit of `gate` is available.
fn gated(options: QueueOptions, gate: &Arc<Semaphore>, seen: &Seen<u32>) -> ServiceDescriptor {
    let (gate, seen) = (Arc::clone(gate), seen.clone());
    ServiceDescriptor::queued(
        "gated",
        options,
        move |item: u32, _cx: RunContext| {
            let (gate, seen) = (Arc::clone(&gate), seen.clone());
            async move {
                gate.acquire().await.unwrap().forget();
                seen.push(item);
            }
        },
        DeadLetters::log(),
    )
}

/// Lets the worker take items until `depth` remain queued.
async fn settle(queue: &Queue<u32>, in_flight: u64) {
    for _ in 0..1000 {
        if queue.stats().in_flight == in_flight {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the worker never took an item: {:?}", queue.stats());
}

#[tokio::test]
async fn a_full_queue_makes_the_sender_wait() {
    let gate = Arc::new(Semaphore::new(0));
    let seen = Seen::default();
    let host = start(gated(QueueOptions::new(2), &gate, &seen)).await;
    let queue = host.get::<Queue<u32>>().await.unwrap();

    queue.send(1).await.unwrap();
    settle(&queue, 1).await; // item 1 is being handled, blocked at the gate
    queue.send(2).await.unwrap();
    queue.send(3).await.unwrap();
    assert_eq!(queue.depth(), 2);

    let waiting = tokio::spawn({
        let queue = Queue::clone(&queue);
        async move { queue.send(4).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "the send waits while the queue is full"
    );

    gate.add_permits(1); // item 1 finishes; item 2 is taken; a slot frees up
    waiting.await.unwrap().unwrap();
    gate.add_permits(3);
    let outcome = host.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(seen.all(), [1, 2, 3, 4]);
}

#[tokio::test]
async fn try_send_hands_the_item_back_when_full_and_send_timeout_gives_up() {
    let gate = Arc::new(Semaphore::new(0));
    let seen = Seen::default();
    let host = start(gated(QueueOptions::new(1), &gate, &seen)).await;
    let queue = host.get::<Queue<u32>>().await.unwrap();

    queue.try_send(1).unwrap();
    settle(&queue, 1).await;
    queue.try_send(2).unwrap();
    let full = queue.try_send(3).unwrap_err();
    assert!(matches!(full, SendError::Full(3)), "{full:?}");
    assert_eq!(full.into_item(), 3);

    let timed_out = queue
        .send_timeout(4, Duration::from_millis(20))
        .await
        .unwrap_err();
    assert!(matches!(timed_out, SendError::TimedOut(4)), "{timed_out:?}");

    gate.add_permits(10);
    let outcome = host.stop().await;
    assert!(outcome.is_success());
    assert_eq!(seen.all(), [1, 2], "handed-back items never run");
    let stats = queue.stats();
    assert_eq!((stats.accepted, stats.handed_back), (2, 2));
}

/// Fills a capacity-2 queue under `mode` with items 1..=5 while the worker holds item 1, then
/// returns what the worker handled and the stats.
async fn overflow(mode: FullMode) -> (Vec<u32>, Vec<Result<(), u32>>, QueueStats) {
    let gate = Arc::new(Semaphore::new(0));
    let seen = Seen::default();
    let host = start(gated(
        QueueOptions::new(2).with_full_mode(mode),
        &gate,
        &seen,
    ))
    .await;
    let queue = host.get::<Queue<u32>>().await.unwrap();
    queue.send(1).await.unwrap();
    settle(&queue, 1).await;
    let mut sends = Vec::new();
    for item in 2..=5 {
        sends.push(queue.send(item).await.map_err(SendError::into_item));
    }
    gate.add_permits(10);
    let outcome = host.stop().await;
    assert!(outcome.is_success());
    (seen.all(), sends, queue.stats())
}

#[tokio::test]
async fn reject_hands_back_what_does_not_fit() {
    let (handled, sends, stats) = overflow(FullMode::Reject).await;
    assert_eq!(handled, [1, 2, 3]);
    assert_eq!(sends, [Ok(()), Ok(()), Err(4), Err(5)]);
    assert_eq!((stats.dropped, stats.handed_back), (0, 2));
}

#[tokio::test]
async fn drop_oldest_makes_room_by_dropping_the_oldest_queued_item() {
    let (handled, sends, stats) = overflow(FullMode::DropOldest).await;
    assert_eq!(handled, [1, 4, 5]);
    assert!(sends.iter().all(Result::is_ok));
    assert_eq!((stats.accepted, stats.dropped, stats.processed), (5, 2, 3));
}

#[tokio::test]
async fn drop_newest_makes_room_by_dropping_the_newest_queued_item() {
    let (handled, sends, stats) = overflow(FullMode::DropNewest).await;
    assert_eq!(handled, [1, 2, 5]);
    assert!(sends.iter().all(Result::is_ok));
    assert_eq!((stats.accepted, stats.dropped, stats.processed), (5, 2, 3));
}

#[tokio::test]
async fn drop_incoming_drops_the_item_being_sent() {
    let (handled, sends, stats) = overflow(FullMode::DropIncoming).await;
    assert_eq!(handled, [1, 2, 3]);
    assert!(sends.iter().all(Result::is_ok));
    assert_eq!((stats.accepted, stats.dropped, stats.processed), (5, 2, 3));
}

#[tokio::test]
async fn one_worker_handles_items_in_order() {
    let seen = Seen::default();
    let host = start(gated(
        QueueOptions::new(8),
        &Arc::new(Semaphore::new(10_000)),
        &seen,
    ))
    .await;
    let queue = host.get::<Queue<u32>>().await.unwrap();
    for item in 0..1000 {
        queue.send(item).await.unwrap();
    }
    let outcome = host.stop().await;
    assert!(outcome.is_success());
    assert_eq!(seen.all(), (0..1000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_handle_items_at_once() {
    // Four items that each wait for the other three: only four workers at once finish them.
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let done = Arc::new(AtomicU32::new(0));
    let service = ServiceDescriptor::queued(
        "parallel",
        QueueOptions::new(4)
            .with_workers(4)
            .with_timeout(Duration::from_secs(20)),
        {
            let (barrier, done) = (Arc::clone(&barrier), Arc::clone(&done));
            move |_item: u32, _cx: RunContext| {
                let (barrier, done) = (Arc::clone(&barrier), Arc::clone(&done));
                async move {
                    barrier.wait().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        },
        DeadLetters::log(),
    );
    let host = start(service).await;
    let queue = host.get::<Queue<u32>>().await.unwrap();
    for item in 0..4 {
        queue.send(item).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        while done.load(Ordering::Relaxed) < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("four workers ran the four items at once");
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn failed_items_are_retried_with_a_growing_jittered_backoff() {
    let attempts = Seen::<Instant>::default();
    let service = ServiceDescriptor::queued(
        "flaky",
        QueueOptions::new(4)
            .with_retries(3)
            .with_retry_backoff(Duration::from_secs(1))
            .with_retry_max_backoff(Duration::from_secs(10)),
        {
            let attempts = attempts.clone();
            move |_item: u32, _cx: RunContext| {
                let attempts = attempts.clone();
                async move {
                    attempts.push(Instant::now());
                    if attempts.all().len() < 4 {
                        return Err::<(), BoxError>("not yet".into());
                    }
                    Ok(())
                }
            }
        },
        DeadLetters::log(),
    );
    let host = start(service).await;
    let queue = host.get::<Queue<u32>>().await.unwrap();
    queue.send(7).await.unwrap();
    tokio::time::sleep(Duration::from_mins(1)).await;
    let times = attempts.all();
    assert_eq!(times.len(), 4, "one attempt and three retries");
    let gaps: Vec<Duration> = times.windows(2).map(|pair| pair[1] - pair[0]).collect();
    for (gap, ceiling) in gaps.iter().zip([1, 2, 4].map(Duration::from_secs)) {
        assert!(
            *gap >= ceiling / 2 && *gap <= ceiling,
            "{gap:?} is not within [{:?}, {ceiling:?}]",
            ceiling / 2
        );
    }
    let stats = queue.stats();
    assert_eq!(
        (
            stats.processed,
            stats.failed,
            stats.retried,
            stats.dead_lettered
        ),
        (1, 3, 3, 0)
    );
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn an_item_that_exhausts_its_retries_goes_to_the_dead_letter_hook() {
    let letters = Seen::<(u32, u64, u32, String)>::default();
    let service = ServiceDescriptor::queued(
        "doomed",
        QueueOptions::new(4).with_retries(2),
        |item: u32, _cx: RunContext| async move {
            if item.is_multiple_of(2) {
                Err::<(), BoxError>(format!("item {item} is even").into())
            } else {
                Ok(())
            }
        },
        DeadLetters::hook({
            let letters = letters.clone();
            move |letter: DeadLetter<u32>| {
                let letters = letters.clone();
                async move {
                    letters.push((
                        *letter.item(),
                        letter.seq(),
                        letter.attempts(),
                        letter.error().to_string(),
                    ));
                }
            }
        }),
    );
    let host = start(service).await;
    let queue = host.get::<Queue<u32>>().await.unwrap();
    for item in 1..=4 {
        queue.send(item).await.unwrap();
    }
    tokio::time::sleep(Duration::from_mins(10)).await;
    assert_eq!(
        letters.all(),
        [
            (2, 2, 3, "item 2 is even".to_owned()),
            (4, 4, 3, "item 4 is even".to_owned())
        ]
    );
    let stats = queue.stats();
    assert_eq!(
        (
            stats.processed,
            stats.failed,
            stats.retried,
            stats.dead_lettered
        ),
        (2, 6, 4, 2)
    );
    assert!(host.stop().await.is_success());
}

/// Sends items 1 to 3 to the service's `Queue<u32>`, stops the host (which must stop cleanly)
/// and returns the queue's counts.
async fn send_one_to_three_and_stop(service: ServiceDescriptor) -> QueueStats {
    let host = start(service).await;
    let queue = host.get::<Queue<u32>>().await.unwrap();
    for item in 1..=3 {
        queue.send(item).await.unwrap();
    }
    let outcome = host.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
    queue.stats()
}

#[tokio::test]
async fn a_panicking_handler_fails_that_item_only() {
    let seen = Seen::default();
    let service = ServiceDescriptor::queued(
        "panicky",
        QueueOptions::new(4),
        {
            let seen = seen.clone();
            move |item: u32, _cx: RunContext| {
                let seen = seen.clone();
                async move {
                    assert!(item != 2, "item two is cursed");
                    seen.push(item);
                }
            }
        },
        DeadLetters::log(),
    );
    let stats = send_one_to_three_and_stop(service).await;
    assert_eq!(seen.all(), [1, 3]);
    assert_eq!(
        (stats.processed, stats.failed, stats.dead_lettered),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn a_handler_that_panics_before_returning_its_future_fails_that_item_only() {
    let seen = Seen::default();
    let service = ServiceDescriptor::queued(
        "panicky_call",
        QueueOptions::new(4).with_retries(1),
        {
            let seen = seen.clone();
            move |item: u32, _cx: RunContext| {
                assert!(item != 2, "item two is cursed before its future exists");
                let seen = seen.clone();
                async move { seen.push(item) }
            }
        },
        DeadLetters::log(),
    );
    let stats = send_one_to_three_and_stop(service).await;
    assert_eq!(seen.all(), [1, 3]);
    assert_eq!(
        (
            stats.processed,
            stats.failed,
            stats.retried,
            stats.dead_lettered
        ),
        (2, 2, 1, 1)
    );
}

#[tokio::test]
async fn a_work_item_that_panics_before_returning_its_future_fails_alone() {
    let host = start(ServiceDescriptor::work_queue(
        "background_tasks",
        QueueOptions::new(4),
    ))
    .await;
    let work = host.get::<WorkQueue>().await.unwrap();
    let seen = Seen::default();
    work.enqueue(|_stop| -> std::future::Ready<()> { panic!("no future for you") })
        .await
        .unwrap();
    let after = seen.clone();
    work.enqueue(move |_stop| async move { after.push(1_u32) })
        .await
        .unwrap();
    assert!(host.stop().await.is_success());
    assert_eq!(seen.all(), [1]);
    let stats = work.stats();
    assert_eq!((stats.processed, stats.dead_lettered), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn an_attempt_past_its_timeout_fails() {
    let letters = Seen::<String>::default();
    let service = ServiceDescriptor::queued(
        "slow",
        QueueOptions::new(4).with_timeout(Duration::from_secs(2)),
        |seconds: u64, _cx: RunContext| async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
        },
        DeadLetters::hook({
            let letters = letters.clone();
            move |letter: DeadLetter<u64>| {
                let letters = letters.clone();
                async move { letters.push(format!("{}: {}", letter.item(), letter.error())) }
            }
        }),
    );
    let host = start(service).await;
    let queue = host.get::<Queue<u64>>().await.unwrap();
    queue.send(1).await.unwrap();
    queue.send(3).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(letters.all(), ["3: did not finish within its time budget"]);
    assert!(host.stop().await.is_success());
}

#[tokio::test]
async fn sends_after_the_stop_get_their_item_back() {
    let seen = Seen::default();
    let host = start(gated(
        QueueOptions::new(4),
        &Arc::new(Semaphore::new(100)),
        &seen,
    ))
    .await;
    let queue = host.get::<Queue<u32>>().await.unwrap();
    queue.send(1).await.unwrap();
    let outcome = host.stop().await;
    assert!(outcome.is_success());
    let closed = queue.send(2).await.unwrap_err();
    assert!(closed.is_closed());
    assert_eq!(closed.into_item(), 2);
    assert!(matches!(queue.try_send(3), Err(SendError::Closed(3))));
    assert_eq!(seen.all(), [1]);
}

#[tokio::test(start_paused = true)]
async fn the_stop_drains_then_cancels_what_the_budget_cannot_finish() {
    let cancelled = Seen::<u64>::default();
    let service = ServiceDescriptor::queued(
        "sleepy",
        QueueOptions::new(10),
        {
            let cancelled = cancelled.clone();
            move |seconds: u64, cx: RunContext| {
                let cancelled = cancelled.clone();
                async move {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(seconds)) => Ok(()),
                        () = cx.stop_token().cancelled() => {
                            cancelled.push(seconds);
                            Err::<(), BoxError>("cancelled".into())
                        }
                    }
                }
            }
        },
        DeadLetters::log(),
    );
    let host = Host::builder()
        .add_service(service)
        .shutdown_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let queue = host.get::<Queue<u64>>().await.unwrap();
    // 1 + 2 + 3 seconds fit the 8 s drain window; the 4 s item is cancelled at 8 s; the last
    // two never start.
    for seconds in [1, 2, 3, 4, 5, 6] {
        queue.send(seconds).await.unwrap();
    }
    tokio::task::yield_now().await;
    let began = Instant::now();
    let outcome = host.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(began.elapsed(), Duration::from_secs(8));
    assert_eq!(cancelled.all(), [4]);
    let stats = queue.stats();
    assert_eq!(
        (stats.accepted, stats.processed, stats.left_undone),
        (6, 3, 3)
    );
}

#[tokio::test(start_paused = true)]
async fn items_that_ignore_their_cancellation_are_abandoned_and_counted() {
    let service = ServiceDescriptor::queued(
        "stubborn",
        QueueOptions::new(10).with_workers(2),
        |seconds: u64, _cx: RunContext| async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
        },
        DeadLetters::log(),
    );
    let host = Host::builder()
        .add_service(service)
        .shutdown_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let queue = host.get::<Queue<u64>>().await.unwrap();
    for seconds in [100, 100, 100] {
        queue.send(seconds).await.unwrap();
    }
    tokio::task::yield_now().await;
    let outcome = host.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
    let stats = queue.stats();
    assert_eq!(
        (stats.accepted, stats.processed, stats.left_undone),
        (3, 0, 3)
    );
}

/// The invariant under load: every accepted item is processed, dead-lettered or left undone;
/// every handed-back item was never accepted, nor seen by the handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_item_is_accounted_for_at_the_stop() {
    let seen = Seen::<u64>::default();
    let service = ServiceDescriptor::queued(
        "loaded",
        QueueOptions::new(16)
            .with_workers(3)
            .with_retries(1)
            .with_retry_backoff(Duration::from_millis(1)),
        {
            let seen = seen.clone();
            move |id: u64, _cx: RunContext| {
                let seen = seen.clone();
                async move {
                    seen.push(id);
                    tokio::time::sleep(Duration::from_micros(id % 300)).await;
                    if id.is_multiple_of(13) {
                        return Err::<(), BoxError>("unlucky".into());
                    }
                    if id.is_multiple_of(101) {
                        tokio::time::sleep(Duration::from_mins(1)).await;
                    }
                    Ok(())
                }
            }
        },
        DeadLetters::log(),
    );
    let host = Host::builder()
        .add_service(service)
        .shutdown_timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let queue = host.get::<Queue<u64>>().await.unwrap();
    let producers: Vec<_> = (0..4_u64)
        .map(|producer| {
            let queue = Queue::clone(&queue);
            tokio::spawn(async move {
                let (mut accepted, mut handed_back) = (Vec::new(), Vec::new());
                for n in 0.. {
                    let id = producer * 1_000_000 + n;
                    let sent = if n % 2 == 0 {
                        queue.send(id).await
                    } else {
                        queue.try_send(id)
                    };
                    match sent {
                        Ok(()) => accepted.push(id),
                        Err(SendError::Closed(back)) => {
                            handed_back.push(back);
                            break;
                        }
                        Err(error) => handed_back.push(error.into_item()),
                    }
                    if n % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                (accepted, handed_back)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outcome = host.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");

    let (mut accepted, mut handed_back) = (HashSet::new(), HashSet::new());
    for producer in producers {
        let (ok, back) = producer.await.unwrap();
        accepted.extend(ok);
        handed_back.extend(back);
    }
    let seen: HashSet<u64> = seen.all().into_iter().collect();
    let stats = queue.stats();
    assert!(stats.accepted > 100, "{stats:?}");
    assert_eq!(stats.accepted, accepted.len() as u64);
    assert_eq!(
        stats.accepted,
        stats.processed + stats.dead_lettered + stats.dropped + stats.left_undone,
        "{stats:?}"
    );
    assert_eq!((stats.depth, stats.in_flight), (0, 0), "{stats:?}");
    assert!(seen.is_subset(&accepted), "only accepted items run");
    assert!(
        seen.is_disjoint(&handed_back),
        "handed-back items never run"
    );
    assert!(accepted.is_disjoint(&handed_back));
    assert_eq!(stats.handed_back, handed_back.len() as u64);
}

#[tokio::test]
async fn the_handle_is_injected_into_other_services() {
    let seen = Seen::default();
    let producer = ServiceDescriptor::background("producer", |cx: RunContext| async move {
        let queue = cx.resolve::<Queue<u32>>().await?;
        for item in 1..=3 {
            queue.send(item).await?;
        }
        cx.lifetime().stop_application();
        Ok::<(), BoxError>(())
    })
    .after("gated");
    let consumer = gated(QueueOptions::new(4), &Arc::new(Semaphore::new(10)), &seen);
    let outcome = Host::builder()
        .add_service(consumer)
        .add_service(producer)
        .build()
        .unwrap()
        .run()
        .await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(seen.all(), [1, 2, 3]);
}

#[test]
fn two_queues_of_one_item_type_are_a_build_error() {
    let queue = |name: &'static str| {
        ServiceDescriptor::queued(
            name,
            QueueOptions::new(1),
            |_: u32, _: RunContext| async {},
            DeadLetters::log(),
        )
    };
    let error = Host::builder()
        .add_service(queue("first"))
        .add_service(queue("second"))
        .build()
        .unwrap_err();
    assert!(
        error.problems().iter().any(|problem| matches!(
            problem,
            Problem::DuplicateRegistration { type_name, owners }
                if type_name.contains("Queue<u32>") && owners == &["first", "second"]
        )),
        "{error}"
    );
}

#[tokio::test]
async fn the_work_queue_runs_closures_with_their_stop_token() {
    let seen = Seen::default();
    let host = start(ServiceDescriptor::work_queue(
        "background_tasks",
        QueueOptions::new(4),
    ))
    .await;
    let work = host.get::<WorkQueue>().await.unwrap();
    for n in 1..=3_u32 {
        let seen = seen.clone();
        work.enqueue(move |stop| async move {
            assert!(!stop.is_cancelled());
            seen.push(n);
        })
        .await
        .unwrap();
    }
    work.enqueue(|_stop| async { Err::<(), BoxError>("boom".into()) })
        .await
        .unwrap();
    assert!(host.stop().await.is_success());
    assert_eq!(seen.all(), [1, 2, 3]);
    let stats = work.stats();
    assert_eq!((stats.processed, stats.dead_lettered), (3, 1));
}

/// A failing dead-letter hook, for the failure-policy tests: items 1 and 3 succeed, 2 fails.
fn hook_fails(policy: FailurePolicy) -> ServiceDescriptor {
    ServiceDescriptor::queued(
        "fragile",
        QueueOptions::new(4),
        |item: u32, _cx: RunContext| async move {
            if item == 2 {
                Err::<(), BoxError>("item two fails".into())
            } else {
                Ok(())
            }
        },
        DeadLetters::hook(|_letter: DeadLetter<u32>| async {
            Err::<(), BoxError>("the dead-letter store is down".into())
        }),
    )
    .on_failure(policy)
}

#[tokio::test]
async fn a_failing_dead_letter_stops_the_host_by_default() {
    let host = start(hook_fails(FailurePolicy::StopHost)).await;
    let queue = host.get::<Queue<u32>>().await.unwrap();
    queue.send(1).await.unwrap();
    queue.send(2).await.unwrap();
    let reason = host.wait().await;
    assert!(reason.is_failure(), "{reason:?}");
    let outcome = host.stop().await;
    assert!(!outcome.is_success());
    assert_eq!(outcome.incidents()[0].service, "fragile");
    let stats = queue.stats();
    assert_eq!((stats.processed, stats.dead_lettered), (1, 1), "{stats:?}");
}

#[tokio::test]
async fn a_failing_dead_letter_under_ignore_closes_the_queue() {
    let host = start(hook_fails(FailurePolicy::Ignore)).await;
    let queue = host.get::<Queue<u32>>().await.unwrap();
    queue.send(2).await.unwrap();
    for _ in 0..1000 {
        if queue.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(matches!(queue.send(3).await, Err(SendError::Closed(3))));
    let outcome = host.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_dead_letter_under_restart_resumes_the_workers() {
    let host = start(hook_fails(FailurePolicy::Restart(
        RestartPolicy::new().with_backoff(Duration::from_secs(1)),
    )))
    .await;
    let queue = host.get::<Queue<u32>>().await.unwrap();
    queue.send(2).await.unwrap();
    queue.send(1).await.unwrap();
    queue.send(3).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stats = queue.stats();
    assert_eq!(
        (stats.processed, stats.dead_lettered, stats.depth),
        (2, 1, 0),
        "{stats:?}"
    );
    assert!(host.stop().await.is_success());
}

/// A scoped value: one per item, shared within it.
struct PerItem(u32);

#[tokio::test]
async fn each_item_gets_a_scope_of_its_own() {
    let built = Arc::new(AtomicU32::new(0));
    let seen = Seen::<(u32, u32, u32)>::default();
    let service = ServiceDescriptor::queued(
        "scoped",
        QueueOptions::new(4),
        {
            let seen = seen.clone();
            move |item: u32, cx: RunContext| {
                let seen = seen.clone();
                async move {
                    let first = cx.resolve::<Arc<PerItem>>().await?;
                    let again = cx.resolve::<Arc<PerItem>>().await?;
                    seen.push((item, first.0, again.0));
                    Ok::<(), BoxError>(())
                }
            }
        },
        DeadLetters::log(),
    );
    let host = Host::builder()
        .add_service(service)
        .provide(Provider::scoped({
            let built = Arc::clone(&built);
            move |_: RunContext| {
                let number = built.fetch_add(1, Ordering::Relaxed) + 1;
                async move { Ok::<_, BoxError>(Arc::new(PerItem(number))) }
            }
        }))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let queue = host.get::<Queue<u32>>().await.unwrap();
    for item in 1..=3 {
        queue.send(item).await.unwrap();
    }
    assert!(host.stop().await.is_success());
    assert_eq!(seen.all(), [(1, 1, 1), (2, 2, 2), (3, 3, 3)]);
}

#[tokio::test(start_paused = true)]
async fn a_dead_letter_that_fails_while_draining_is_a_failure_of_the_stop() {
    let service = ServiceDescriptor::queued(
        "fragile",
        QueueOptions::new(4),
        |_item: u32, _cx: RunContext| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err::<(), BoxError>("always fails".into())
        },
        DeadLetters::hook(|_letter: DeadLetter<u32>| async {
            Err::<(), BoxError>("the dead-letter store is down".into())
        }),
    );
    let host = start(service).await;
    let queue = host.get::<Queue<u32>>().await.unwrap();
    queue.send(1).await.unwrap();
    let outcome = host.stop().await;
    assert!(!outcome.is_success());
    let incident = &outcome.incidents()[0];
    assert_eq!(incident.service, "fragile");
    assert!(
        incident.what.contains("failed while stopping"),
        "{incident:?}"
    );
    assert!(
        incident.what.contains("the dead-letter store is down"),
        "{incident:?}"
    );
}

#[tokio::test]
async fn send_errors_convert_into_anyhow_with_the_question_mark() {
    async fn send_after_stop(queue: &Queue<u32>) -> anyhow::Result<()> {
        queue.send(7).await?;
        Ok(())
    }
    async fn enqueue_after_stop(tasks: &WorkQueue) -> anyhow::Result<()> {
        tasks.enqueue(|_stop| async {}).await?;
        Ok(())
    }
    fn boxed(queue: &Queue<u32>) -> Result<(), BoxError> {
        queue.try_send(8)?;
        Ok(())
    }
    let gate = Arc::new(Semaphore::new(10));
    let host = Host::builder()
        .add_service(gated(QueueOptions::new(1), &gate, &Seen::default()))
        .add_service(ServiceDescriptor::work_queue("tasks", QueueOptions::new(1)))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let queue = host.get::<Queue<u32>>().await.unwrap();
    let tasks = host.get::<WorkQueue>().await.unwrap();
    assert!(host.stop().await.is_success());
    let error = send_after_stop(&queue).await.unwrap_err();
    assert!(error.to_string().contains("the queue is closed"), "{error}");
    assert!(
        error
            .downcast_ref::<SendError<u32>>()
            .is_some_and(SendError::is_closed)
    );
    let error = enqueue_after_stop(&tasks).await.unwrap_err();
    assert!(error.to_string().contains("the queue is closed"), "{error}");
    assert!(boxed(&queue).is_err());
}

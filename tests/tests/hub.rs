//! The hub over real WebSockets: to all, to a group, to every connection of a user; groups
//! joined from a client message handled with injection; a client that stops reading slows
//! neither the sender nor the others, and the overflow policy is counted.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt as _, StreamExt as _};
use hosted::Host;
use hosted::host::RunningHost;
use hosted::web::{
    Client, Hub, HubOptions, HubUpgrade, Overflow, Routes, ServerAddress, WebOptions, WebServer,
};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const HANG: Duration = Duration::from_secs(20);

#[derive(serde::Deserialize)]
struct Who {
    user: Option<String>,
    group: Option<String>,
}

#[derive(serde::Deserialize)]
struct Join {
    join: String,
}

/// What the client-message handler saw, resolved through injection.
#[derive(Default)]
struct Joined(Mutex<Vec<String>>);

async fn on_join(message: Join, client: Client) -> Result<(), hosted::di::InjectError> {
    let joined = client.resolve::<Arc<Joined>>().await?;
    client.join(&message.join);
    joined
        .0
        .lock()
        .unwrap()
        .push(format!("{}:{}", client.user().unwrap_or("-"), message.join));
    let hub = client.resolve::<Hub<String>>().await?;
    let _ = hub.send_connection(client.id(), &format!("joined {}", message.join));
    Ok(())
}

async fn hub(upgrade: HubUpgrade, Query(who): Query<Who>) -> Response {
    let mut upgrade = upgrade.on_message(on_join);
    if let Some(user) = who.user {
        upgrade = upgrade.user(user);
    }
    if let Some(group) = who.group {
        upgrade = upgrade.group(group);
    }
    upgrade.accept()
}

async fn start(hub_options: HubOptions) -> (RunningHost, SocketAddr) {
    let mut options = WebOptions::default();
    options.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    options.hub = hub_options;
    let running = WebServer::new()
        .routes("hub", Routes::new().route("/hub", get(hub)))
        .options(options)
        .install(Host::builder())
        .add_instance(Arc::new(Joined::default()))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let address = running.get::<ServerAddress>().await.unwrap().get().unwrap();
    (running, address)
}

async fn connect(address: SocketAddr, query: &str, hub: &Hub<String>) -> Socket {
    let before = hub.stats().connections;
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/hub?{query}"))
        .await
        .unwrap();
    // The connection joins the hub once the upgrade completes on the server.
    let began = Instant::now();
    while hub.stats().connections == before {
        assert!(
            began.elapsed() < HANG,
            "the connection never joined the hub"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    socket
}

async fn next_text(socket: &mut Socket) -> String {
    loop {
        let message = tokio::time::timeout(HANG, socket.next())
            .await
            .expect("a message in time")
            .expect("the socket open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_all_a_group_or_every_connection_of_a_user() {
    let (running, address) = start(HubOptions::default()).await;
    let hub = running.get::<hosted::web::hub::HubCore>().await.unwrap();
    let hub: Hub<String> = Hub::new(hub);
    let mut ada_tab1 = connect(address, "user=ada&group=red", &hub).await;
    let mut ada_tab2 = connect(address, "user=ada", &hub).await;
    let mut bob = connect(address, "user=bob&group=red", &hub).await;
    let mut anonymous = connect(address, "", &hub).await;

    hub.send_all(&"everyone".to_owned()).unwrap();
    for socket in [&mut ada_tab1, &mut ada_tab2, &mut bob, &mut anonymous] {
        assert_eq!(next_text(socket).await, "everyone");
    }

    hub.send_group("red", &"red only".to_owned()).unwrap();
    hub.send_user("ada", &"ada only".to_owned()).unwrap();
    hub.send_all(&"marker".to_owned()).unwrap();
    assert_eq!(next_text(&mut ada_tab1).await, "red only");
    assert_eq!(next_text(&mut ada_tab1).await, "ada only");
    assert_eq!(next_text(&mut ada_tab1).await, "marker");
    assert_eq!(next_text(&mut ada_tab2).await, "ada only");
    assert_eq!(next_text(&mut ada_tab2).await, "marker");
    assert_eq!(next_text(&mut bob).await, "red only");
    assert_eq!(next_text(&mut bob).await, "marker");
    assert_eq!(next_text(&mut anonymous).await, "marker");

    // A client message, handled with injection, joins a group.
    anonymous
        .send(Message::Text(r#"{"join":"blue"}"#.into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut anonymous).await, "joined blue");
    hub.send_group("blue", &"blue only".to_owned()).unwrap();
    hub.send_all(&"marker".to_owned()).unwrap();
    assert_eq!(next_text(&mut anonymous).await, "blue only");
    assert_eq!(next_text(&mut anonymous).await, "marker");
    assert_eq!(next_text(&mut bob).await, "marker");
    let joined = running.get::<Joined>().await.unwrap();
    assert_eq!(*joined.0.lock().unwrap(), ["-:blue"]);

    // A malformed client message is skipped; the connection stays.
    anonymous
        .send(Message::Text("not json".into()))
        .await
        .unwrap();
    hub.send_all(&"still here".to_owned()).unwrap();
    assert_eq!(next_text(&mut anonymous).await, "still here");

    // Leaving: a closed connection is forgotten, with its groups and user.
    drop(ada_tab2);
    let began = Instant::now();
    while hub.stats().connections != 3 {
        assert!(began.elapsed() < HANG);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(next_text(&mut ada_tab1).await, "marker");
    assert_eq!(next_text(&mut ada_tab1).await, "still here");
    hub.send_user("ada", &"ada again".to_owned()).unwrap();
    assert_eq!(next_text(&mut ada_tab1).await, "ada again");
    assert!(running.stop().await.is_success());
}

/// The median time one `send_all` of `message` takes over `count` sends.
fn median_send(hub: &Hub<String>, message: &String, count: usize) -> Duration {
    let mut times: Vec<Duration> = (0..count)
        .map(|_| {
            let began = Instant::now();
            hub.send_all(message).unwrap();
            began.elapsed()
        })
        .collect();
    times.sort();
    times[count / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_slows_neither_the_sender_nor_the_others() {
    let (running, address) = start(HubOptions::default()).await;
    let hub: Hub<String> = Hub::new(running.get::<hosted::web::hub::HubCore>().await.unwrap());
    let mut reader = connect(address, "user=reader", &hub).await;
    let message = "x".repeat(16 * 1024);

    // The reader keeps reading in the background, counting.
    let (sent_last, mut got_last) = tokio::sync::mpsc::channel::<()>(1);
    let reading = tokio::spawn(async move {
        loop {
            match reader.next().await {
                Some(Ok(Message::Text(text))) if text.as_str().contains("last") => {
                    let _ = sent_last.send(()).await;
                }
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    });
    let baseline = median_send(&hub, &message, 500);
    hub.send_all(&"last".to_owned()).unwrap();
    tokio::time::timeout(HANG, got_last.recv()).await.unwrap();

    // A second client connects and never reads: its socket buffers fill, then its outbox.
    let stalled = connect(address, "user=stalled", &hub).await;
    let with_stall = median_send(&hub, &message, 2000);
    hub.send_all(&"last".to_owned()).unwrap();
    tokio::time::timeout(HANG, got_last.recv())
        .await
        .expect("the reading client got the last message while the other one stalled");

    let stats = hub.stats();
    let per_connection = hub.connection_stats();
    let stalled_stats = per_connection
        .iter()
        .find(|stats| stats.user.as_deref() == Some("stalled"))
        .unwrap();
    let reader_stats = per_connection
        .iter()
        .find(|stats| stats.user.as_deref() == Some("reader"))
        .unwrap();
    assert!(stalled_stats.dropped > 0, "{per_connection:?}");
    assert!(stalled_stats.waiting <= HubOptions::default().buffer);
    assert_eq!(reader_stats.dropped, 0, "{per_connection:?}");
    assert_eq!(stats.dropped, stalled_stats.dropped);
    assert_eq!(stats.disconnected, 0);
    // Sending stays a queue push: the stalled client does not make it wait. (A send that
    // waited for the stalled socket would wait for ever: the slack is only for a busy machine,
    // where one median push can take a scheduler slice.)
    assert!(
        with_stall < baseline * 50 + Duration::from_millis(5),
        "median send: {with_stall:?} with a stalled client, {baseline:?} without"
    );
    eprintln!("median send_all: {baseline:?} without a stalled client, {with_stall:?} with one");
    drop(stalled);
    reading.abort();
    assert!(running.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disconnect_policy_closes_a_client_that_falls_behind() {
    let mut options = HubOptions::default();
    options.buffer = 4;
    options.overflow = hosted::web::hub::OverflowMode::Disconnect;
    options.close_code = 4000;
    assert_eq!(options.overflow(), Overflow::Disconnect { code: 4000 });
    let (running, address) = start(options).await;
    let hub: Hub<String> = Hub::new(running.get::<hosted::web::hub::HubCore>().await.unwrap());
    let mut stalled = connect(address, "user=stalled", &hub).await;
    let message = "x".repeat(64 * 1024);
    let began = Instant::now();
    while hub.stats().disconnected == 0 {
        assert!(
            began.elapsed() < HANG,
            "never disconnected: {:?}",
            hub.stats()
        );
        hub.send_all(&message).unwrap();
    }
    // The client reads again: what was written, then the close (or the dropped connection).
    let ended = tokio::time::timeout(HANG, async {
        loop {
            match stalled.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|frame| u16::from(frame.code)),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    })
    .await
    .expect("the connection ends");
    if let Some(code) = ended {
        assert_eq!(code, 4000);
    }
    let began = Instant::now();
    while hub.stats().connections != 0 {
        assert!(began.elapsed() < HANG);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(hub.stats().disconnected, 1);
    assert!(running.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_sends_every_socket_a_going_away_close_frame() {
    let (running, address) = start(HubOptions::default()).await;
    let hub: Hub<String> = Hub::new(running.get::<hosted::web::hub::HubCore>().await.unwrap());
    let mut socket = connect(address, "user=ada", &hub).await;
    let stopping = tokio::spawn(running.stop());
    let frame = tokio::time::timeout(HANG, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await
    .unwrap()
    .expect("a close frame with a code");
    assert_eq!(u16::from(frame.code), 1001);
    let outcome = stopping.await.unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_ignores_the_close_does_not_hold_the_stop() {
    let (running, address) = start(HubOptions::default()).await;
    let hub: Hub<String> = Hub::new(running.get::<hosted::web::hub::HubCore>().await.unwrap());
    // Never read, never answer the close.
    let _deaf = connect(address, "user=deaf", &hub).await;
    let outcome = tokio::time::timeout(HANG, running.stop())
        .await
        .expect("the stop ends within its budget");
    assert!(outcome.is_success(), "{outcome:?}");
}

/// A backplane that records what it carries, then delivers it locally: the seam a shared
/// backplane plugs into.
#[derive(Default)]
struct Recording {
    local: std::sync::OnceLock<hosted::web::hub::LocalConnections>,
    seen: Mutex<Vec<(hosted::web::hub::Target, String)>>,
}

impl hosted::web::Backplane for Recording {
    fn attach(&self, local: hosted::web::hub::LocalConnections) {
        let _ = self.local.set(local);
    }

    fn publish(&self, envelope: hosted::web::hub::Envelope) {
        self.seen.lock().unwrap().push((
            envelope.target.clone(),
            envelope.payload.as_str().to_owned(),
        ));
        if let Some(local) = self.local.get() {
            local.deliver(&envelope);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_goes_through_the_backplane() {
    let backplane = Arc::new(Recording::default());
    let mut options = WebOptions::default();
    options.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    let running = WebServer::new()
        .routes("hub", Routes::new().route("/hub", get(hub)))
        .options(options)
        .backplane(Arc::clone(&backplane) as Arc<dyn hosted::web::Backplane>)
        .install(Host::builder())
        .add_instance(Arc::new(Joined::default()))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let address = running.get::<ServerAddress>().await.unwrap().get().unwrap();
    let hub: Hub<String> = Hub::new(running.get::<hosted::web::hub::HubCore>().await.unwrap());
    let mut socket = connect(address, "user=ada", &hub).await;
    hub.send_user("ada", &"through the backplane".to_owned())
        .unwrap();
    assert_eq!(next_text(&mut socket).await, "through the backplane");
    assert_eq!(
        *backplane.seen.lock().unwrap(),
        [(
            hosted::web::hub::Target::User("ada".to_owned()),
            "\"through the backplane\"".to_owned()
        )]
    );
    assert!(running.stop().await.is_success());
}

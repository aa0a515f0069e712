#![deny(warnings)]

use hosted::HostedService;

#[hosted::hosted_service]
async fn first(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

#[hosted::hosted_service]
struct Second;

impl HostedService for Second {}

mod nested {
    #[hosted::hosted_service(name = "third")]
    pub(crate) async fn third(stop: hosted::CancellationToken) {
        stop.cancelled().await;
    }
}

#[hosted::hosted_service(after = [first, "third"])]
async fn fourth(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

#[hosted::hosted_service(after = [Second, nested::third, "first"])]
async fn fifth(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

#[hosted::hosted_service(after = first)]
struct Sixth;

impl HostedService for Sixth {}

#[hosted::timed(every = "1h")]
async fn hourly() {}

#[hosted::queued(capacity = 8)]
async fn mail(item: String) {
    drop(item);
}

mod deeper {
    use super::hourly as renamed;

    #[hosted::hosted_service(after = [super::first, crate::nested::third, self::sibling, renamed])]
    pub(crate) async fn seventh(stop: hosted::CancellationToken) {
        stop.cancelled().await;
    }

    #[hosted::hosted_service(after = [super::mail, super::Second])]
    pub(crate) async fn sibling(stop: hosted::CancellationToken) {
        stop.cancelled().await;
    }
}

fn main() {
    // Services declared in a function body (a test, a doctest) are named by `after` too.
    #[hosted::hosted_service]
    async fn local(stop: hosted::CancellationToken) {
        stop.cancelled().await;
    }

    #[hosted::hosted_service]
    struct LocalType;

    impl HostedService for LocalType {}

    #[hosted::hosted_service(after = [local, LocalType, first])]
    async fn after_locals(stop: hosted::CancellationToken) {
        stop.cancelled().await;
    }
}

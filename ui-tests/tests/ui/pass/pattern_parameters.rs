#![deny(warnings)]

use hosted::{CancellationToken, ApplicationLifetime};
use hosted::service::ServiceInfo;

#[hosted::hosted_service]
async fn patterns(_: ApplicationLifetime, mut stop: CancellationToken, _info: ServiceInfo) {
    stop = stop.child_token();
    stop.cancelled().await;
}

#[hosted::hosted_service]
async fn no_parameters() {}

// Parameters named like the generated code's own locals (`__hosted_cx`, `__hosted_needs`,
// `__hosted_item`) do not shadow them.
#[hosted::hosted_service]
async fn generated_names(cx: ServiceInfo, needs: CancellationToken, item: ApplicationLifetime) {
    let _ = (cx, item);
    needs.cancelled().await;
}

#[hosted::queued(capacity = 1)]
async fn queued_names(mail: String, item: ServiceInfo, cx: CancellationToken) {
    let _ = (mail, item, cx);
}

#[hosted::timed(every = "1h")]
async fn timed_names(cx: ServiceInfo, value: CancellationToken) {
    let _ = (cx, value);
}

fn main() {}

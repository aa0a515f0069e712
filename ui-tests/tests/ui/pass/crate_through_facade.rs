#![deny(warnings)]

// A crate that re-exports `hosted` points generated code at its re-export.
mod facade {
    pub(crate) use ::hosted;
}

#[facade::hosted::hosted_service(crate = "crate::facade::hosted")]
async fn worker(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

#[facade::hosted::hosted_service(crate = "crate::facade::hosted", after = worker)]
struct Cache;

impl facade::hosted::HostedService for Cache {}

fn main() {
    if false {
        facade::hosted::run!(crate = "crate::facade::hosted");
    }
}

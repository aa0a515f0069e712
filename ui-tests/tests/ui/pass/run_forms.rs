#![deny(warnings)]

use std::time::Duration;

fn main() {
    // `run!` never returns, so each form is only type-checked here.
    if false {
        hosted::run!();
    }
    if false {
        hosted::run!(|host| host.shutdown_timeout(Duration::from_secs(5)));
    }
    if false {
        hosted::run!(
            link = [hosted],
            configure = |host| host,
            logging = false,
            crate = "::hosted",
        );
    }
}

use std::time::Duration;

fn main() {
    hosted::run!(|host| {
        host.shutdown_timeout(Duration::from_secs(5));
    });
}

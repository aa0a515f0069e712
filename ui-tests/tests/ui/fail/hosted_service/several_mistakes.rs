// Independent mistakes of one invocation are reported together.
#[hosted::hosted_service(order = "first", on_failure = "retry", nmae = "worker")]
fn worker<T>(stop: &hosted::CancellationToken) {
    let _ = stop;
}

fn main() {}

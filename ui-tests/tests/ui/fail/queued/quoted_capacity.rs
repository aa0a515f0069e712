#[hosted::queued(capacity = "100")]
async fn send(email: String) {
    let _ = email;
}

fn main() {}

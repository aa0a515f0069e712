#[hosted::queued(capacity = 5 workers = 2)]
async fn send(email: String) {
    let _ = email;
}

fn main() {}

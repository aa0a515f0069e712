#[derive(Clone, Debug)]
struct Email(String);

#[hosted::queued(capacity = 10)]
async fn handle(first: Email, second: Email) {
    let _ = (first, second);
}

fn main() {}

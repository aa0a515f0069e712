#[derive(Clone, Debug)]
struct Email(String);

#[hosted::queued(capacity = 10)]
async fn handle(email: &Email) {
    let _ = email;
}

fn main() {}

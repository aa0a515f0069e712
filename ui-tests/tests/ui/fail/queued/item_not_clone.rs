#[derive(Debug)]
struct Reply(u32);

#[hosted::queued(capacity = 10)]
async fn handle(reply: Reply) {
    let _ = reply.0;
}

fn main() {}

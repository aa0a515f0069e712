#[derive(Clone, Debug)]
struct Reply(u32);

#[hosted::queued(durable)]
async fn handle(reply: Reply) {
    let _ = reply.0;
}

fn main() {}

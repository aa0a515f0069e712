struct Reply(u32);

#[hosted::queued(capacity = 10, retries = 3, dead_letter = "log_without_item")]
async fn handle(reply: Reply) {
    let _ = reply.0;
}

fn main() {}

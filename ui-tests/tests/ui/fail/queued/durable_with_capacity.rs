#[derive(serde::Serialize, serde::Deserialize)]
struct Reply(u32);

#[hosted::queued(durable, capacity = 10, full_mode = "reject", dead_letter = "log")]
async fn handle(reply: Reply) {
    let _ = reply.0;
}

fn main() {}

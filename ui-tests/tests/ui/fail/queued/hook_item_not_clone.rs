struct Reply(u32);

#[hosted::queued(capacity = 10, dead_letter = park)]
async fn handle(reply: Reply) {
    let _ = reply.0;
}

async fn park(letter: hosted::queue::DeadLetter<Reply>) {
    let _ = letter;
}

fn main() {}

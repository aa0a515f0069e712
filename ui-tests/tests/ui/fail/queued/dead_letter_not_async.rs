#[hosted::queued(capacity = 10, dead_letter = park)]
async fn handle(item: u32) {
    let _ = item;
}

fn park(letter: hosted::queue::DeadLetter<u32>) {
    let _ = letter;
}

fn main() {}

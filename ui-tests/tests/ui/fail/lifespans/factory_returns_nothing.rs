#[hosted::scoped]
fn setup() {}

#[hosted::transient]
async fn teardown() -> () {}

fn main() {
    setup();
    let _ = teardown();
}

#[hosted::hosted_service]
enum Mode {
    Fast,
    Slow,
}

fn main() {
    let _ = [Mode::Fast, Mode::Slow];
}

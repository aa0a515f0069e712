#[hosted::scoped]
enum Mode {
    Fast,
    Careful,
}

fn main() {
    let _ = (Mode::Fast, Mode::Careful);
}

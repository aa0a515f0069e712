#[hosted::singleton(as = "dyn Mailer")]
struct Smtp;

fn main() {
    let _ = Smtp;
}

trait Mailer: Send + Sync {}

#[hosted::singleton(as = dyn Mailer, as = dyn Mailer)]
struct Smtp;

impl Mailer for Smtp {}

fn main() {
    let _ = Smtp;
}

#[hosted::singleton]
trait Mailer {}

fn main() {}

#[hosted::hosted_service]
trait Worker {
    fn work(&self);
}

struct Noop;

impl Worker for Noop {
    fn work(&self) {}
}

fn main() {
    Noop.work();
}

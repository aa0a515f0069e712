#[hosted::singleton]
fn make<T: Default + Send + Sync + 'static>() -> T {
    T::default()
}

fn main() {}

use std::marker::PhantomData;

#[hosted::singleton]
struct Cache<T> {
    #[hosted(default)]
    entries: PhantomData<T>,
}

fn main() {}

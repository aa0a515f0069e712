use std::rc::Rc;

#[hosted::scoped]
fn session() -> Rc<String> {
    Rc::new(String::new())
}

fn main() {}

fn main() {
    hosted::run!(link = [not_a_crate]);
}

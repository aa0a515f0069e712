fn main() {
    hosted::run!(foo bar baz);
}

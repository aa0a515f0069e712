fn main() {
    hosted::run!(configure = 5);
}

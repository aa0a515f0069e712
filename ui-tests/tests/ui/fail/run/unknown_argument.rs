fn main() {
    hosted::run!(threads = 4);
}

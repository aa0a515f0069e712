fn main() {
    hosted::run!(logging = false, logging = true);
}

fn main() {
    hosted::run!(link = some::path);
}

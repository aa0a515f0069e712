fn main() {
    hosted::run!(link = [std::collections]);
}

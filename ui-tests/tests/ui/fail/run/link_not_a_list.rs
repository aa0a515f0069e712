fn main() {
    hosted::run!(link = billing);
}

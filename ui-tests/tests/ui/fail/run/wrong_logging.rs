fn main() {
    hosted::run!(logging = "off");
}

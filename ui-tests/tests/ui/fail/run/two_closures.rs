fn main() {
    hosted::run!(|host| host, |host| host);
}

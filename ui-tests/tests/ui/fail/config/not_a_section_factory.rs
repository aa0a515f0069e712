use hosted::Config;
#[derive(serde::Deserialize)]
struct Limits { max: u32 }
struct Budget(u32);
#[hosted::scoped]
fn budget(limits: Config<Limits>) -> Budget {
    Budget(limits.max)
}
fn main() {}

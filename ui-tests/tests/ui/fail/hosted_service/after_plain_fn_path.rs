mod helpers {
    pub async fn warm_up() {}
}

#[hosted::timed(every = "5s", after = helpers::warm_up)]
async fn refresh() {
    helpers::warm_up().await;
}

fn main() {}

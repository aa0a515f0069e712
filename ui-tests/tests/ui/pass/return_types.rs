#![deny(warnings)]

use std::fmt;

#[hosted::hosted_service]
async fn unit(stop: hosted::CancellationToken) -> () {
    stop.cancelled().await;
}

#[hosted::hosted_service]
async fn with_anyhow(stop: hosted::CancellationToken) -> anyhow::Result<()> {
    stop.cancelled().await;
    Ok(())
}

#[hosted::hosted_service]
async fn with_boxed(
    stop: hosted::CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    stop.cancelled().await;
    Ok(())
}

#[hosted::hosted_service]
async fn with_box_error(stop: hosted::CancellationToken) -> Result<(), hosted::BoxError> {
    stop.cancelled().await;
    Ok(())
}

/// What a `thiserror` enum expands to.
#[derive(Debug)]
enum SyncError {
    Disconnected,
    Rejected(String),
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnected => f.write_str("disconnected"),
            Self::Rejected(reason) => write!(f, "rejected: {reason}"),
        }
    }
}

impl std::error::Error for SyncError {}

#[hosted::hosted_service]
async fn with_enum(stop: hosted::CancellationToken) -> Result<(), SyncError> {
    if stop.is_cancelled() {
        return Err(SyncError::Disconnected);
    }
    stop.cancelled().await;
    Err(SyncError::Rejected("stopped".to_owned()))
}

fn main() {}

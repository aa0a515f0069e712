//! Guides: how the host behaves and how it is built.

pub mod lifecycle {
    #![doc = include_str!("docs/lifecycle.md")]
}

pub mod design {
    #![doc = include_str!("docs/design.md")]
}

pub mod configuration {
    #![doc = include_str!("docs/configuration.md")]
}

#[cfg(feature = "postgres")]
pub mod durable {
    #![doc = include_str!("docs/durable.md")]
}

#[cfg(feature = "web")]
pub mod web {
    #![doc = include_str!("docs/web.md")]
}

pub mod operations {
    #![doc = include_str!("docs/operations.md")]
}

#[cfg(feature = "metrics")]
pub mod metrics {
    #![doc = include_str!("docs/metrics.md")]
}

#[cfg(feature = "web")]
pub mod dashboard {
    #![doc = include_str!("docs/dashboard.md")]
}

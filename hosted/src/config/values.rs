//! Field deserialisers for typed [`Section`](super::Section)s, so a section's durations and
//! addresses read like every other configuration value and fail with the same messages:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize)]
//! struct Mailer {
//!     #[serde(with = "hosted::config::duration")]
//!     timeout: Duration,
//!     #[serde(with = "hosted::config::socket_address")]
//!     relay: SocketAddr,
//! }
//! impl hosted::config::Section for Mailer {
//!     const KEY: &'static str = "mailer";
//! }
//!
//! use serde::de::IntoDeserializer as _;
//! type Text<'a> = serde::de::value::StrDeserializer<'a, serde::de::value::Error>;
//! let read = |text: &'static str| hosted::config::duration::deserialize::<Text<'_>>(text.into_deserializer());
//! assert_eq!(read("1m30s").unwrap(), Duration::from_secs(90));
//! assert!(read("5 sec").unwrap_err().to_string().contains("5 sec"));
//! ```

/// A duration in the grammar the attributes use (`"5s"`, `"1m30s"`, `"250ms"`; see the
/// [configuration guide](crate::docs::configuration)). `#[serde(with = "hosted::config::duration")]`.
pub mod duration {
    use std::fmt;
    use std::time::Duration;

    use serde::Deserializer;
    use serde::de::{Error, Visitor};

    struct Text;

    impl Visitor<'_> for Text {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration like \"5s\" or \"250ms\"")
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<Duration, E> {
            crate::service::parse_duration(text).map_err(E::custom)
        }

        fn visit_u64<E: Error>(self, number: u64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "expected a duration like \"5s\" or \"250ms\", got {number} without a unit \
                 (write \"{number}s\" or \"{number}ms\")"
            )))
        }

        fn visit_i64<E: Error>(self, number: i64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "expected a duration like \"5s\" or \"250ms\", got {number}"
            )))
        }

        fn visit_f64<E: Error>(self, number: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "expected a duration like \"5s\" or \"250ms\", got {number} (fractions are \
                 written with a smaller unit: \"1s500ms\")"
            )))
        }
    }

    /// Reads the duration.
    ///
    /// # Errors
    /// A value that is not a duration in the grammar, with the form expected.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(Text)
    }
}

/// An IP address and port (`"0.0.0.0:9464"`, `"[::1]:8080"`).
/// `#[serde(with = "hosted::config::socket_address")]`.
pub mod socket_address {
    use std::net::SocketAddr;

    use serde::{Deserialize as _, Deserializer};

    /// Reads the address.
    ///
    /// # Errors
    /// A value that is not an IP address with a port, with the form expected.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "expected an IP address and port such as \"127.0.0.1:8080\" or \"[::1]:8080\", \
                 got {text:?}"
            ))
        })
    }
}

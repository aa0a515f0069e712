//! The application's authentication seam: an [`Authorizer`] registered in the container decides
//! who may see the dashboard, and any route of the application can require it with the
//! [`Authorized`] extractor.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::extract::request_context;
use crate::util::BoxFuture;

/// Decides whether a request may go on: the application's own authentication, registered once
/// (`HostBuilder::add_instance::<dyn Authorizer>(...)`, or a `#[singleton]` bound to it) and used
/// by the dashboard and by every handler that takes [`Authorized`].
///
/// ```
/// use std::pin::Pin;
/// use std::sync::Arc;
/// use axum::http::request::Parts;
/// use hosted::web::{Authorizer, Denied};
///
/// /// Lets in requests that carry the operators' token.
/// struct OperatorToken(String);
///
/// impl Authorizer for OperatorToken {
///     fn authorize<'a>(
///         &'a self,
///         request: &'a Parts,
///     ) -> Pin<Box<dyn Future<Output = Result<(), Denied>> + Send + 'a>> {
///         Box::pin(async move {
///             let sent = request.headers.get("authorization").and_then(|v| v.to_str().ok());
///             if sent == Some(&format!("Bearer {}", self.0)) { Ok(()) } else { Err(Denied::unauthorized("Bearer")) }
///         })
///     }
/// }
///
/// let host = hosted::Host::builder()
///     .add_instance::<dyn Authorizer>(Arc::new(OperatorToken("s3cret".into())));
/// # drop(host);
/// ```
pub trait Authorizer: Send + Sync + 'static {
    /// `Ok` lets the request through; `Err` answers it with the denial.
    fn authorize<'a>(
        &'a self,
        request: &'a Parts,
    ) -> Pin<Box<dyn Future<Output = Result<(), Denied>> + Send + 'a>>;
}

/// Why a request was refused, and how it is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    status: StatusCode,
    challenge: Option<String>,
}

impl Denied {
    /// 401 with a `WWW-Authenticate` challenge (`Basic realm="hosted"`, `Bearer`): the client
    /// may try again with credentials.
    #[must_use]
    pub fn unauthorized(challenge: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            challenge: Some(challenge.into()),
        }
    }

    /// 403: the credentials are known and not enough.
    #[must_use]
    pub fn forbidden() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            challenge: None,
        }
    }

    /// The status the request is answered with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let mut response = (self.status, "not authorized\n").into_response();
        if let Some(challenge) = self
            .challenge
            .and_then(|challenge| HeaderValue::from_str(&challenge).ok())
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// HTTP Basic authentication against one user name and password: the simplest [`Authorizer`],
/// for an operators' account kept in configuration (a [`Secret`](crate::Secret)).
pub struct BasicAuth {
    expected: String,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth").finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Lets in requests that send this user name and password.
    #[must_use]
    pub fn new(user: &str, password: &str) -> Self {
        Self {
            expected: format!("Basic {}", base64(format!("{user}:{password}").as_bytes())),
        }
    }
}

impl Authorizer for BasicAuth {
    fn authorize<'a>(&'a self, request: &'a Parts) -> BoxFuture<'a, Result<(), Denied>> {
        let sent = request
            .headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        let matches = constant_time_eq(sent, self.expected.as_bytes());
        Box::pin(std::future::ready(if matches {
            Ok(())
        } else {
            Err(Denied::unauthorized("Basic realm=\"hosted\""))
        }))
    }
}

/// Compares without stopping at the first difference, so the time taken does not tell how much
/// of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0_u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An extractor that lets a handler run only for requests the registered [`Authorizer`] lets
/// through; others are answered with its [`Denied`]. Without an authoriser registered, every
/// request is refused (403): a forgotten registration fails closed.
///
/// ```
/// use hosted::web::Authorized;
///
/// async fn admin(_: Authorized) -> &'static str {
///     "only for operators"
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Authorized;

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let cx = request_context(parts).map_err(IntoResponse::into_response)?;
        let authorizer = cx
            .resolve::<Option<Arc<dyn Authorizer>>>()
            .await
            .map_err(|error| super::Rejection::Inject(error).into_response())?;
        let Some(authorizer) = authorizer else {
            tracing::warn!("refused: no `Arc<dyn Authorizer>` is registered");
            return Err(Denied::forbidden().into_response());
        };
        authorizer
            .authorize(parts)
            .await
            .map(|()| Self)
            .map_err(IntoResponse::into_response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}

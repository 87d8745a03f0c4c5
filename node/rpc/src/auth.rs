//! The bearer-token HTTP layer in front of the admin server.
//!
//! Every request must carry `Authorization: Bearer <token>`; the token is compared in
//! constant time and never logged. Refused requests get HTTP 401 with a JSON-RPC error
//! body of code [`ErrorCode::Unauthorized`].

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use stablelane::ErrorCode;
use subtle::ConstantTimeEq;
use tower::{Layer, Service};
use tracing::debug;

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

impl AdminToken {
    /// Wraps `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self(Arc::from(token.into()))
    }

    /// Whether `candidate` equals the token, in time independent of where they differ.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        bool::from(self.0.as_bytes().ct_eq(candidate))
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Layer that refuses requests without the right bearer token.
#[derive(Debug, Clone)]
pub struct BearerAuthLayer {
    token: AdminToken,
}

impl BearerAuthLayer {
    /// A layer requiring `token`.
    pub fn new(token: AdminToken) -> Self {
        Self { token }
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            token: self.token.clone(),
        }
    }
}

/// The service of [`BearerAuthLayer`].
#[derive(Debug, Clone)]
pub struct BearerAuth<S> {
    inner: S,
    token: AdminToken,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B> Service<HttpRequest<B>> for BearerAuth<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse<HttpBody>>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse<HttpBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        let presented = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "));
        let header_present = presented.is_some();
        let allowed = presented.is_some_and(|token| self.token.matches(token));
        if allowed {
            let future = self.inner.call(request);
            Box::pin(async move { future.await.map_err(Into::into) })
        } else {
            debug!(
                target: "rpc",
                header_present,
                "admin request refused"
            );
            Box::pin(async { Ok(unauthorized()) })
        }
    }
}

fn unauthorized() -> HttpResponse<HttpBody> {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": ErrorCode::Unauthorized.code(),
            "message": "missing or wrong admin bearer token",
        },
    })
    .to_string();
    let mut response = HttpResponse::new(HttpBody::from(body));
    *response.status_mut() = http::StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_and_debug() {
        let token = AdminToken::new("s3cret");
        assert!(token.matches(b"s3cret"));
        assert!(!token.matches(b"s3cre"));
        assert!(!token.matches(b"s3cretX"));
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}

//! The errors clients see, in DSS's REST form: an HTTP status and `{"error", "error_description"}` (the
//! "Типовые ошибки" tables of the DSS REST documentation, e.g. 400 `invalid_signature_params`), and
//! RFC 6749 §5.2 errors at the token endpoint. Descriptions never quote a secret.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DssError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

pub type DssResult<T> = Result<T, DssError>;

impl DssError {
    pub fn new(status: u16, error: &'static str, description: impl Into<String>) -> DssError {
        DssError {
            status,
            error,
            description: description.into(),
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> DssError {
        DssError::new(400, "invalid_request", d)
    }

    pub fn invalid_token() -> DssError {
        DssError::new(
            401,
            "invalid_token",
            "The access token is missing, invalid or expired",
        )
    }

    pub fn access_denied(d: impl Into<String>) -> DssError {
        DssError::new(403, "access_denied", d)
    }

    pub fn signature_params(d: impl Into<String>) -> DssError {
        DssError::new(400, "invalid_signature_params", d)
    }

    pub fn not_found(d: impl Into<String>) -> DssError {
        DssError::new(404, "object_not_found", d)
    }

    pub fn internal(what: &str) -> DssError {
        log::error!("internal error: {what}");
        DssError::new(500, "server_error", "The service failed; try again later")
    }
}

impl From<rusqlite::Error> for DssError {
    fn from(e: rusqlite::Error) -> DssError {
        DssError::internal(&format!("database: {e}"))
    }
}

impl IntoResponse for DssError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        });
        (status, Json(body)).into_response()
    }
}

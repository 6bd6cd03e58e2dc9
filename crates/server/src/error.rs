//! Every error the API answers: a JSON body `{"error": {"code", "message"}}`, 4xx for the
//! client's mistakes and 5xx for the service's.

use super::*;

/// The JSON error body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// `bad_request`, `not_found`, `unauthorized`, `forbidden`, `payload_too_large`,
    /// `unsupported_media_type`, `method_not_allowed`, `no_route`, `rate_limited`, `timeout` or
    /// `internal`.
    pub code: String,
    /// Human-readable message naming the field or thing.
    pub message: String,
}

/// An error answered as JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message } };
        (self.status, Json(body)).into_response()
    }
}

impl From<warmstart_app::Error> for ApiError {
    fn from(e: warmstart_app::Error) -> ApiError {
        use warmstart_app::Error as E;
        match &e {
            E::BadRequest { .. } => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
            E::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            // internal details stay in the log line's status; the client gets a generic text
            _ => {
                eprintln!("{}", serde_json::json!({"level": "error", "error": e.to_string()}));
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error (logged)")
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let status = r.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "bad_request",
        };
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY { StatusCode::BAD_REQUEST } else { status };
        ApiError::new(status, code, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text())
    }
}

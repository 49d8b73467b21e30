//! Liveness and readiness.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use crate::dto::HealthBody;
use crate::state::AppState;

/// The health check.
pub struct HealthApi;

#[derive(ApiResponse)]
enum HealthResponse {
    /// The service and its database are usable.
    #[oai(status = 200)]
    Ok(Json<HealthBody>),
    /// The database cannot be read (unreachable, or locked past the wait).
    #[oai(status = 503)]
    Unavailable(
        Json<HealthBody>,
        /// Seconds to wait before asking again.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

#[OpenApi(
    tag = "ApiTags::Health",
    response_header(
        name = "X-Request-Id",
        ty = "crate::wire_strings::RequestId",
        description = "The request's id: the client's `X-Request-Id` when it is 1–128 characters of `A-Z a-z 0-9 - _ . :`, else a new UUID. Logged with the request."
    )
)]
impl HealthApi {
    /// Health check
    ///
    /// 200 when the service can read its database, 503 otherwise.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self, state: Data<&AppState>) -> HealthResponse {
        match state.auth.check_health().await {
            Ok(()) => HealthResponse::Ok(Json(HealthBody {
                status: "ok".to_owned(),
                database: "ok".to_owned(),
            })),
            Err(error) => {
                tracing::error!(%error, "health check failed");
                HealthResponse::Unavailable(
                    Json(HealthBody {
                        status: "unavailable".to_owned(),
                        database: "unavailable".to_owned(),
                    }),
                    crate::error::STORE_UNAVAILABLE_RETRY_AFTER_SECS,
                )
            }
        }
    }
}

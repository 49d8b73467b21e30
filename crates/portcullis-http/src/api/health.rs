//! Health: `/health` (kept as it was), the liveness probe `/health/live`
//! and the readiness probe `/health/ready`.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use crate::dto::{HealthBody, LivenessBody, ReadinessBody};
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

#[derive(ApiResponse)]
enum LivenessResponse {
    /// The process answers.
    #[oai(status = 200)]
    Ok(Json<LivenessBody>),
}

#[derive(ApiResponse)]
enum ReadinessResponse {
    /// This node can serve requests: send it traffic.
    #[oai(status = 200)]
    Ready(Json<ReadinessBody>),
    /// This node cannot serve requests now: the body says what is missing.
    #[oai(status = 503)]
    NotReady(
        Json<ReadinessBody>,
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

    /// Liveness probe
    ///
    /// 200 whenever the process answers. It reads nothing, not even the
    /// store: restart the process only when this fails, never because the
    /// database is down.
    #[oai(path = "/health/live", method = "get", operation_id = "healthLive")]
    async fn live(&self) -> LivenessResponse {
        LivenessResponse::Ok(Json(LivenessBody {
            status: "ok".to_owned(),
        }))
    }

    /// Readiness probe
    ///
    /// 200 when this node can serve requests: the store answers, its schema
    /// is migrated (the check reads a migrated table) and takes writes, and
    /// the node holds a key to sign access tokens with. 503 with
    /// `Retry-After` otherwise: take the node out of the load balancer until
    /// it answers 200 again.
    #[oai(path = "/health/ready", method = "get", operation_id = "healthReady")]
    async fn ready(&self, state: Data<&AppState>) -> ReadinessResponse {
        let database = match state.auth.check_health().await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "readiness check: the store is not usable");
                false
            }
        };
        // Keys fixed by configuration (HS256) are loaded before the server
        // starts; stored keys are published while they can sign.
        let publication = &state.publication;
        let signing_key = publication.key_lifecycle.is_none()
            || !publication.key_ring.published_keys().is_empty();
        let word = |ok: bool| if ok { "ok" } else { "unavailable" }.to_owned();
        let body = ReadinessBody {
            status: word(database && signing_key),
            database: word(database),
            signing_key: word(signing_key),
        };
        if database && signing_key {
            ReadinessResponse::Ready(Json(body))
        } else {
            ReadinessResponse::NotReady(
                Json(body),
                crate::error::STORE_UNAVAILABLE_RETRY_AFTER_SECS,
            )
        }
    }
}

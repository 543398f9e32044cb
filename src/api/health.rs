//! `GET /healthz` and `GET /readyz`: what load balancers and orchestrators ask.

use std::time::Duration;

use poem::{http::StatusCode, web::Data};
use poem_openapi::{payload::Json, types::Example, ApiResponse, Object, OpenApi};

use super::{
    error::{ApiError, Error, ErrorStatuses},
    AppState,
};

/// How long the database gets to answer a readiness check: probes usually give up after
/// one second (Kubernetes' default), and a slower answer is not ready anyway.
pub const READY_TIMEOUT: Duration = Duration::from_millis(900);

/// The service's state.
#[derive(Debug, Object)]
#[oai(rename = "HealthStatus", example)]
pub struct HealthStatus {
    /// Always `ok`: any other state is an error status.
    pub status: String,
}

impl Example for HealthStatus {
    fn example() -> Self {
        Self::ok()
    }
}

impl HealthStatus {
    fn ok() -> Self {
        Self {
            status: "ok".to_owned(),
        }
    }
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The process is up and answering.
    #[oai(status = 200)]
    Ok(Json<HealthStatus>),
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// The database answers: the service can take traffic.
    #[oai(status = 200)]
    Ok(Json<HealthStatus>),
}

pub enum HealthErrors {}

impl ErrorStatuses for HealthErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body larger than 16 KiB",
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error; the cause is logged, never shown",
        ),
    ];
}

pub enum ReadyErrors {}

impl ErrorStatuses for ReadyErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body larger than 16 KiB",
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "The database did not answer within 0.9 s; the cause is logged",
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error; the cause is logged, never shown",
        ),
    ];
}

#[derive(Default)]
pub struct HealthApi;

#[OpenApi]
impl HealthApi {
    /// Liveness: is the process up
    ///
    /// Answers 200 while the process serves HTTP, whatever the state of the database: a
    /// failing check means the process should be restarted.
    #[oai(
        path = "/healthz",
        method = "get",
        operation_id = "healthz_healthz_get"
    )]
    async fn healthz(&self) -> Result<HealthResponse, ApiError<HealthErrors>> {
        Ok(HealthResponse::Ok(Json(HealthStatus::ok())))
    }

    /// Readiness: can the service take traffic
    ///
    /// Answers 200 when the database answers a query within 0.9 s, else 503 with
    /// `Retry-After`: take the replica out of the load balancer until it answers again.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz_readyz_get")]
    async fn readyz(&self, state: Data<&AppState>) -> Result<ReadyResponse, ApiError<ReadyErrors>> {
        match tokio::time::timeout(READY_TIMEOUT, state.accounts.db().ping()).await {
            Ok(Ok(())) => Ok(ReadyResponse::Ok(Json(HealthStatus::ok()))),
            Ok(Err(e)) => Err(Error::Database(e).into()),
            Err(_elapsed) => Err(Error::Database(sea_orm::DbErr::Custom(format!(
                "readiness check: no answer within {} ms",
                READY_TIMEOUT.as_millis()
            )))
            .into()),
        }
    }
}

use poem_openapi::{payload::Json, OpenApi};

use super::{
    error::ApiError,
    security::{OAuth2PasswordBearer, Scope},
    users::ProtectedErrors,
};

#[derive(Default)]
pub struct ReportsApi;

#[OpenApi]
impl ReportsApi {
    /// Read the sales reports
    #[oai(
        path = "/reports",
        method = "get",
        operation_id = "read_reports_reports_get"
    )]
    async fn read_reports(
        &self,
        #[oai(scope = "Scope::Reports")] auth: OAuth2PasswordBearer,
    ) -> Result<Json<Vec<String>>, ApiError<ProtectedErrors>> {
        Ok(Json(vec![format!(
            "Q3 sales, as {} may read them",
            auth.0.username
        )]))
    }
}

//! The connection edge of subscription validation: an integration's Secret is validated against
//! its WizardConfig's schema and the WizardConfig's test connection must succeed, before
//! anything is billed. Messages never carry secret values (see `crate::connection`).

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::{Context, Error};
use crate::api::WizardConfig;
use crate::api::conditions::reasons::{
    CONNECTION_INVALID, CONNECTION_SECRET_NOT_FOUND, CONNECTION_TEST_FAILED,
    WIZARD_CONFIG_NOT_FOUND,
};
use crate::api::listing::{ListingSpec, ListingType};
use crate::api::tenant_subscription::TenantSubscriptionSpec;
use crate::connection::{test_connection, validate_settings};
use crate::lifecycle::Refusal;

/// Checks the connection of an Integration subscription; `Ok(None)` when it works (or the
/// listing is not an integration).
pub async fn check_connection(
    ctx: &Context,
    namespace: &str,
    spec: &TenantSubscriptionSpec,
    listing: &ListingSpec,
) -> Result<Option<Refusal>, Error> {
    if listing.type_ != ListingType::Integration {
        return Ok(None);
    }
    let (Some(integration), Some(connection)) = (&listing.integration, &spec.connection) else {
        // The pure rules already refuse a missing connection.
        return Ok(None);
    };
    let wizard_name = integration.wizard_config_ref.as_str();
    let Some(wizard) = Api::<WizardConfig>::all(ctx.client.clone())
        .get_opt(wizard_name)
        .await?
    else {
        return Ok(Some(Refusal::new(
            WIZARD_CONFIG_NOT_FOUND,
            "spec.listing",
            format!("the listing's WizardConfig {wizard_name} is not in the catalog yet"),
        )));
    };
    let secret_name = &connection.secret_ref.name;
    let Some(secret) = Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_opt(secret_name)
        .await?
    else {
        return Ok(Some(Refusal::new(
            CONNECTION_SECRET_NOT_FOUND,
            "spec.connection.secretRef",
            format!(
                "Secret {namespace}/{secret_name} does not exist; create it with the connection settings"
            ),
        )));
    };
    let data = secret.data.unwrap_or_default();
    let settings = match validate_settings(&wizard.spec, &data) {
        Ok(settings) => settings,
        Err(e) => {
            return Ok(Some(Refusal::new(
                CONNECTION_INVALID,
                "spec.connection.secretRef",
                format!("Secret {secret_name}: {e}"),
            )));
        }
    };
    match test_connection(&wizard.spec.test_connection, &settings, &ctx.config.probe).await {
        Ok(_) => Ok(None),
        Err(e) => Ok(Some(Refusal::new(
            CONNECTION_TEST_FAILED,
            "spec.connection.secretRef",
            format!("the test connection failed ({}): {e}", e.category()),
        ))),
    }
}

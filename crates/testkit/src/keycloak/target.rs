//! The Keycloak a test talks to: a real one named by the environment, or the
//! fake.

use super::server::FakeKeycloak;
use super::{ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, REALM};

/// The Keycloak a test talks to: a real one from `KEYCLOAK_URL`,
/// `KEYCLOAK_REALM`, `KEYCLOAK_CLIENT_ID` and `KEYCLOAK_CLIENT_SECRET` (a
/// confidential client of that realm whose service account has the
/// realm-management roles manage-clients and view-clients), else a started
/// [`FakeKeycloak`].
#[derive(Debug)]
pub struct KeycloakTarget {
    /// Keycloak's base URL.
    pub base_url: String,
    /// The realm.
    pub realm: String,
    /// The admin client's id.
    pub admin_client_id: String,
    /// The admin client's secret.
    pub admin_client_secret: String,
    fake: Option<FakeKeycloak>,
}

impl KeycloakTarget {
    /// The real Keycloak `KEYCLOAK_URL` names, or a fresh fake.
    pub async fn from_env_or_fake() -> std::io::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match var("KEYCLOAK_URL") {
            Some(base_url) => {
                let required = |name: &str| {
                    var(name).ok_or_else(|| {
                        std::io::Error::other(format!("KEYCLOAK_URL is set, so {name} must be too"))
                    })
                };
                Ok(KeycloakTarget {
                    base_url,
                    realm: required("KEYCLOAK_REALM")?,
                    admin_client_id: required("KEYCLOAK_CLIENT_ID")?,
                    admin_client_secret: required("KEYCLOAK_CLIENT_SECRET")?,
                    fake: None,
                })
            }
            None => Self::fake_only().await,
        }
    }

    /// Always a fresh fake, whatever the environment says.
    pub async fn fake_only() -> std::io::Result<Self> {
        let fake = FakeKeycloak::start().await?;
        Ok(KeycloakTarget {
            base_url: fake.base_url().to_owned(),
            realm: REALM.to_owned(),
            admin_client_id: ADMIN_CLIENT_ID.to_owned(),
            admin_client_secret: ADMIN_CLIENT_SECRET.to_owned(),
            fake: Some(fake),
        })
    }

    /// The fake, for faults and the request log; `None` on a real Keycloak.
    pub fn fake(&self) -> Option<&FakeKeycloak> {
        self.fake.as_ref()
    }

    /// Whether this is a real Keycloak.
    pub fn is_real(&self) -> bool {
        self.fake.is_none()
    }

    /// A clientId no other test run uses: `hubwright-test-{label}-{uuid}`.
    pub fn unique_client_id(&self, label: &str) -> String {
        format!("hubwright-test-{label}-{}", uuid::Uuid::now_v7().simple())
    }

    /// `/admin/realms/{realm}/clients`, the prefix of every client path.
    pub fn clients_path(&self) -> String {
        format!("/admin/realms/{}/clients", self.realm)
    }

    /// `/realms/{realm}/protocol/openid-connect/token`.
    pub fn token_path(&self) -> String {
        format!("/realms/{}/protocol/openid-connect/token", self.realm)
    }
}

//! Keycloak for tests: a real one when `KEYCLOAK_URL` is set, else
//! [`FakeKeycloak`], an in-process stand-in for the part of Keycloak's API
//! hubwright's Keycloak driver uses.
//!
//! # Where the shapes come from
//!
//! Keycloak 26 (26.x, Quarkus distribution, no `/auth` prefix). Paths,
//! statuses and bodies follow Keycloak's admin REST API documentation and
//! source (`ClientsResource`, `ClientResource`, `KeycloakErrorHandler`,
//! `ErrorResponse`, `ClientIdAndSecretAuthenticator` in keycloak/keycloak),
//! checked against responses recorded from `quay.io/keycloak/keycloak:26`
//! (`start-dev`) in ekalinin/gloak's conformance goldens
//! (`internal/conformance/testdata/golden/admin/clients/*.http`,
//! `.../oidc/token/*.http`):
//!
//! | Request | Answer |
//! |---|---|
//! | `POST /realms/{r}/protocol/openid-connect/token`, good client credentials | 200 `{"access_token","expires_in","refresh_expires_in":0,"token_type":"Bearer","not-before-policy":0,"scope"}`, `Cache-Control: no-store` |
//! | the same, wrong secret | 401 `{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}` |
//! | the same, unknown client | 401 `{"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}` |
//! | the same, client without a service account | 400 `{"error":"unauthorized_client","error_description":"Client not enabled to retrieve service account"}` |
//! | unknown realm on `/realms/...` | 404 `{"error":"Realm does not exist"}` |
//! | `/admin/...` without a valid bearer token | 401 `{"error":"HTTP 401 Unauthorized"}` |
//! | `/admin/...` with a token lacking the roles | 403 `{"error":"HTTP 403 Forbidden"}` |
//! | unknown realm on `/admin/realms/...` | 404 `{"error":"Realm not found."}` |
//! | `GET /admin/realms/{r}/clients?clientId=x` | 200, a list of 0 or 1 `ClientRepresentation` (exact match), `secret` included |
//! | `POST /admin/realms/{r}/clients` | 201, empty body, `Location: {base}/admin/realms/{r}/clients/{uuid}` |
//! | the same `clientId` again | 409 `{"errorMessage":"Client x already exists"}` |
//! | `GET`, `PUT`, `DELETE /admin/realms/{r}/clients/{uuid}` | 200 representation, 204, 204 |
//! | `PUT` changing `clientId` to a taken one | 409 `{"errorMessage":"Client already exists"}` |
//! | `GET .../clients/{uuid}/client-secret` | 200 `{"type":"secret","value":"..."}`; `{"type":"secret"}` for a public client |
//! | any `.../clients/{unknown uuid}[/...]` | 404 `{"error":"Could not find client"}` |
//! | unparseable JSON body | 400 `{"error":"unknown_error","error_description":"Cannot parse the JSON"}` |
//!
//! `PUT` changes only the fields it is sent, and merges `attributes` (a null
//! value removes one), as Keycloak's `RepresentationToModel.updateClient` does.
//!
//! # What it does not do
//!
//! One realm; no other admin resources; no redirect-URI or other validation
//! (Keycloak answers 400 for e.g. a `javascript:` redirect URI); tokens never
//! expire (Keycloak's live 60 s in `master`, 300 s in a new realm) and are
//! opaque, not JWTs; no roles beyond "the admin client may do everything";
//! security headers and `Content-Length` as axum sends them. A client created
//! without `clientId` is stored as such (Keycloak's answer is not recorded).
//!
//! # Faults and the request log
//!
//! [`Fault`]: the next N requests whose path starts with a prefix (and whose
//! method matches, if given) answer a status with Keycloak's body for it, a
//! given body, or hang until the client gives up. [`FakeKeycloak::requests`]
//! lists every request with the status answered (0: hung).
//!
//! # Layout
//!
//! `server` runs [`FakeKeycloak`] and holds its memory; `fault` the injected
//! faults; `routes` dispatches a request to the token endpoint (`token`) or
//! the client admin API (`admin`), which answer with Keycloak's shapes;
//! `clients` builds and updates client representations; `form` decodes what
//! the token endpoint is sent; `target` picks a real Keycloak or the fake.

mod admin;
mod clients;
mod fault;
mod form;
mod routes;
mod server;
mod target;
mod token;

pub use fault::{Fault, FaultAction};
pub use server::{FakeKeycloak, RequestRecord};
pub use target::KeycloakTarget;

/// The fake's realm.
pub const REALM: &str = "hubwright";
/// The fake's admin client (service account with every admin right).
pub const ADMIN_CLIENT_ID: &str = "hubwright-admin";
/// Its secret.
pub const ADMIN_CLIENT_SECRET: &str = "fake-admin-secret-5c1d0f";

//! A Kubernetes API server stand-in for tests.
//!
//! No real API server can run where the tests run, so [`KubeApiServer`] serves
//! the part of the Kubernetes API hubwright uses, in-process over HTTP/1 on
//! `127.0.0.1`, to the real `kube` client and the real `helm` (3 and 4). It
//! writes a kubeconfig (cluster, user and context named `stand-in`, an
//! `https` server with the test CA, a bearer token) and rejects requests
//! without that token with 401. The same port also answers plain HTTP
//! ([`KubeApiServer::url`]) for tests that send raw requests. [`TestCluster`]
//! picks a real cluster instead when `KUBECONFIG` is set, so the same tests
//! run on kind.
//!
//! # What it does as kube-apiserver does
//!
//! - Resource types from one table ([`resources::RESOURCES`]): core v1
//!   namespaces, secrets, configmaps, services, serviceaccounts,
//!   persistentvolumeclaims, pods, events, resourcequotas, limitranges; apps/v1
//!   deployments, statefulsets; networking.k8s.io/v1 networkpolicies,
//!   ingresses; rbac.authorization.k8s.io/v1 roles, rolebindings; policy/v1
//!   poddisruptionbudgets.
//! - Discovery: `/version`, `/api`, `/apis`, `/apis/{group}`, `/api/v1`,
//!   `/apis/{group}/{version}`, and aggregated discovery (apidiscovery.k8s.io/v2)
//!   on `/api` and `/apis` when asked for by `Accept`.
//! - get, list (items without apiVersion/kind, list `resourceVersion`), create,
//!   replace, patch, delete, deletecollection, watch; the `/status`
//!   subresource for kinds that have one (main-resource writes keep `status`,
//!   status writes keep everything else).
//! - Metadata: `uid`, `creationTimestamp`, `generation` (kinds that have it;
//!   bumped when anything outside metadata and status changes, and on graceful
//!   deletion), one global `resourceVersion` counter; a write that changes
//!   nothing keeps the resourceVersion and sends no event. `generateName`.
//!   A Secret's `stringData` is base64-encoded into `data` and not stored;
//!   its `type` defaults to `Opaque`.
//! - `Status` bodies as the real server words them: NotFound, AlreadyExists,
//!   Conflict (stale resourceVersion, delete preconditions, apply conflicts),
//!   Invalid (names: RFC 1123 label for namespaces, RFC 1035 label for
//!   services, path segment for RBAC kinds, RFC 1123 subdomain otherwise),
//!   BadRequest (apiVersion/kind/name/namespace not matching the URL), 405,
//!   401, Forbidden (namespace terminating; RBAC wording for injected faults).
//! - Patches: merge patch (RFC 7386), JSON patch (RFC 6902), and server-side
//!   apply with `metadata.managedFields` (`FieldsV1`, `f:` keys), conflicts
//!   with `FieldManagerConflict` causes, `force=true` taking ownership, removal
//!   of fields a manager stops applying when nobody else owns them, shared
//!   ownership of equal values, Update entries for other writes (manager from
//!   `fieldManager`, else the User-Agent up to its first `/`). Apply without
//!   `fieldManager` is 422 `PatchOptions.meta.k8s.io "" is invalid`, as on the
//!   real server.
//! - Label selectors (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`) and field
//!   selectors on `metadata.name` and `metadata.namespace`, for list, watch
//!   and deletecollection.
//! - Namespaces: created `Active` with `spec.finalizers: [kubernetes]` and the
//!   `kubernetes.io/metadata.name` label; DELETE answers 200 with
//!   `deletionTimestamp` and phase `Terminating`; a namespace controller
//!   deletes the content, then drops the `kubernetes` finalizer; the namespace
//!   goes when `metadata.finalizers` is empty too. Creating in a terminating
//!   namespace is 403 with cause `NamespaceTerminating`, in a missing one 404
//!   `namespaces "x" not found`; deleting a terminating namespace again is the
//!   real 409. Other objects with finalizers get `deletionTimestamp` and stay
//!   until their finalizers are removed; no finalizer may be added meanwhile.
//! - Watch: JSON lines, from a resourceVersion (replaying history) or from
//!   the current state, selectors (objects leaving a selector arrive as
//!   DELETED, entering as ADDED), `timeoutSeconds`, BOOKMARK events with
//!   `allowWatchBookmarks`, and the `ERROR` event with a 410 `Expired` Status
//!   for a resourceVersion older than the kept history ([`KubeApiServer::compact`]).
//! - OpenAPI v3 ([`openapi`]): the `/openapi/v3` index and a document per
//!   group-version with the real paths, operation ids, parameters and
//!   `x-kubernetes-group-version-kind` extensions, so client-go's
//!   field-validation check finds `fieldValidation` on each kind's PATCH and
//!   leaves validation to the server, as it does against a real server.
//! - Protobuf request bodies ([`protobuf`]) for Secret, ConfigMap and
//!   DeleteOptions, which client-go's typed clients send (helm's release
//!   storage creates, updates and deletes its Secrets that way).
//! - TLS with a committed test CA (`tls/`), because client-go sends a
//!   kubeconfig's token only over `https`.
//! - Faults ([`Fault`]): error responses with realistic bodies, latency and
//!   dropped connections, matched by verb, resource and name; a request log.
//! - `pods/{name}/portforward` over WebSocket (`v4.channel.k8s.io`, as
//!   kube-rs and kubectl speak it), with a pod's ports led where the test
//!   says ([`KubeApiServer::forward_pod_port`]); see `portforward`'s docs.
//!
//! # What helm does against it
//!
//! Helm 3.17.2 `upgrade --install` (no `--wait`): `/version`, a list of
//! Secrets with `labelSelector=name=R,owner=helm`, `/api`, `/apis`,
//! `/openapi/v3`, `/openapi/v3/api/v1`, `/openapi/v3/apis/apps/v1`, a GET
//! (404) of each object, POST of the namespace (`--create-namespace`), POST
//! of the release Secret `sh.helm.release.v1.R.v1` (protobuf, status
//! `pending-install`), POST of each object (JSON, `fieldManager=helm`), PUT
//! of the release Secret (`deployed`). An upgrade GETs each object and sends
//! a strategic merge patch for those that changed. Uninstall DELETEs each
//! object (JSON body) and each release Secret (protobuf `DeleteOptions`).
//! Helm 4.3.1 asks for the same discovery and OpenAPI documents and writes
//! every object, the namespace too, by server-side apply
//! (`fieldManager=helm&fieldValidation=Strict&force=false`); its release
//! Secrets are written as helm 3 writes them; `status` also lists each
//! Deployment's Pods by its selector. Neither asks for `/openapi/v2` once
//! `/openapi/v3` answers.
//!
//! # What it does not do
//!
//! - No defaulting or schema validation beyond names: a Deployment keeps
//!   whatever spec it was given (no `replicas: 1`, strategy, or pod template
//!   defaults), a Service gets no `clusterIP`, unknown fields are stored, and
//!   wrongly typed fields are accepted. Objects are stored as JSON, so an
//!   empty map or list that was sent is kept (Go's `omitempty` drops e.g. an
//!   empty ConfigMap `data` on the real server).
//! - No controllers except the namespace one: nothing creates ReplicaSets or
//!   Pods, sets Deployment status, binds PVCs, schedules or runs Pods, or
//!   creates the `default` ServiceAccount and `kube-root-ca.crt` ConfigMap.
//!   No built-in namespaces (`default`, `kube-system`) exist until created.
//!   Tests set status through the `/status` subresource.
//! - Server-side apply treats every list as atomic (the real server merges
//!   lists with list-map keys such as `containers[name]` and records
//!   `k:{...}` keys); field sets have no `.` entries; the status subresource
//!   may also change metadata on the real server, here it changes only
//!   `status`. Managed fields sent in a body are ignored.
//! - Strategic merge patch is applied as a JSON merge patch: lists are
//!   replaced, not merged by key, and `$patch`/`$retainKeys` directives are not
//!   understood.
//! - No `dryRun` (400), no `/finalize` for namespaces, no other subresources
//!   (`scale`, `log`, `exec`, `eviction`), no field selectors beyond
//!   `metadata.name`/`metadata.namespace`, no `limit`/`continue` paging (lists
//!   are always complete), no `resourceVersionMatch`, no
//!   `sendInitialEvents`, no protobuf or table output (a client that accepts
//!   protobuf first gets JSON, which client-go accepts), no `/openapi/v2`,
//!   no authorization (every valid token may do everything),
//!   no admission webhooks, quotas or limit ranges enforcement, no garbage
//!   collection by `ownerReferences`, no graceful pod termination.
//! - A watch starting at a resourceVersion newer than the server's starts at
//!   the current one (the real server waits and may answer 504).
//! - Bookmarks come every second (configurable), the real server sends one
//!   about every minute.
//! - `uid`s are UUIDv7, the real server uses v4.
//! - OpenAPI: every kind's schema is permissive (`apiVersion`, `kind`,
//!   `metadata`, then `x-kubernetes-preserve-unknown-fields: true`), where the
//!   real documents describe every field; a client that validates against
//!   the schemas itself (kubectl with `--validate` on a server without
//!   field validation) finds nothing wrong. `fieldValidation` is accepted
//!   and ignored: `Strict` does not reject unknown or duplicate fields, and
//!   `Warn` sends no `Warning` header. Paths have no watch or
//!   all-namespaces list operations; the index lists only the served
//!   group-versions (not `version`, `api`, `apis`, `.well-known`, `logs`,
//!   `openid`); the `hash` is not SHA-512 and no `Cache-Control`/`ETag`
//!   headers or redirects for stale hashes are sent.
//! - Protobuf bodies only for Secret, ConfigMap and DeleteOptions (others
//!   415); managed fields and unknown fields in them are dropped.
//! - TLS: HTTP/1.1 only (no ALPN `h2`, the real server speaks HTTP/2), one
//!   fixed certificate for `127.0.0.1`/`localhost`, no client certificates;
//!   plain HTTP is answered on the same port, the real server has no plain
//!   port.

mod cluster;
pub mod discovery;
pub mod faults;
pub mod fields;
mod lifecycle;
pub mod openapi;
pub mod patch;
mod portforward;
pub mod protobuf;
pub mod resources;
mod routes;
pub mod selector;
mod server;
pub mod status;
pub mod store;
mod tls;
pub mod validate;
mod watch;
pub mod write;

pub use cluster::TestCluster;
pub use faults::{Fault, FaultAction, RequestRecord, Verb};
pub use server::{CONTEXT, ClientError, KubeApiServer, Options};

//! hoist-registry: hoist's client of the OCI distribution API, and `pull`/`push` between a
//! registry and the store.
//!
//! Synchronous, on `ureq` with rustls; the store stays in hoist-core, which knows nothing of
//! HTTP. Functions never print: they report progress through callbacks and return [`Error`],
//! whose variants name the registry, the repository and what was refused.
//!
//! - [`client`]: one registry: the `/v2/` ping (HTTPS, plain HTTP only for loopback addresses
//!   or when marked insecure), the `WWW-Authenticate` challenge flow (anonymous, Basic, Bearer
//!   tokens), retries with backoff on 5xx and dropped connections, manifests and blobs;
//! - [`auth`]: challenges, credentials, token scopes;
//! - [`authfile`]: credentials in docker's `config.json` and its credential helpers;
//! - [`tls`]: the roots and client certificate of a registry (`--cert-dir`, `certs.d`);
//! - [`pull`]: resolve, download a few blobs at a time into the store's staging with digest
//!   and size checks, commit atomically and name the image;
//! - [`push`]: upload the blobs the registry lacks, then the manifest as stored.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod auth;
pub mod authfile;
pub mod client;
pub mod error;
mod metered;
pub mod pull;
pub mod push;
pub mod source;
pub mod tls;

pub use client::{Client, ClientOptions};
pub use error::{Error, Result};

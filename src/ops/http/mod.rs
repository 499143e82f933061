//! The service's HTTP endpoint: hyper's HTTP/1.1 server on a thread of its own, optionally
//! over TLS (OpenSSL) with client certificates and basic auth, as the exporter-toolkit web
//! configuration file says (`webconfig`, checked by `auth`); `routes` says what each path
//! answers.

pub mod auth;
pub mod conns;
mod respond;
pub mod routes;
mod server;
pub mod webconfig;

pub use server::HttpServer;

pub use server::serve;

pub(crate) use server::ServeError;

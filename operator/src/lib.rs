//! marketplace-operator: a SaaS add-on marketplace run as code on Kubernetes.
#![forbid(unsafe_code)]

pub mod admission;
pub mod api;
pub mod audit_log;
pub mod billing;
pub mod catalog;
pub mod cli;
pub mod connection;
pub mod controllers;
pub mod credits;
pub mod front_door;
pub mod health;
pub mod lifecycle;
pub mod metering;
pub mod notify;
pub mod plugin;
pub mod process;
pub mod runtime;
pub mod server;
pub mod text;

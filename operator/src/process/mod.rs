//! The marketplace's long-running processes, assembled from [`crate::runtime`] from plain
//! settings (the command line parses flags into them).

pub mod api;
pub mod operator;

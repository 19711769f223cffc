//! The marketplace's long-running processes, assembled from [`crate::runtime`] from plain
//! settings (the command line parses flags into them).

pub mod operator;

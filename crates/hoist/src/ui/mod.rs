//! Output plumbing shared by the commands: progress bars, tables, docker's units and times.

pub mod human;
pub mod json;
pub mod progress;
pub mod table;

//! Attribute macros for `session-core`. Placeholder until the macros issue lands.

//! Benchmarks (see the benchmarks issue).

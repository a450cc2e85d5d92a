//! The global allocator of musl builds, for every binary that links this crate (`relay`,
//! `zmq-adaptor`, `zmtp-keygen`: a `#[global_allocator]` in a library applies to the whole program).
//!
//! musl's malloc (mallocng) favours size and hardening over speed: the relay, which allocates per
//! message, did about 35 % fewer requests per CPU-second with it than with glibc's malloc. dlmalloc,
//! pure Rust (no C toolchain, the static build stays what it was), measured level with glibc and with
//! mimalloc; docs/deploy.md has the figures. It takes one process-wide lock per call, uncontended in
//! the relay's single-threaded runtime. glibc builds keep the system allocator.

#[cfg(all(target_os = "linux", target_env = "musl"))]
#[global_allocator]
static GLOBAL: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

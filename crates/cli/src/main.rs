//! The `warmstart` command line. All logic lives in the `warmstart_cli` library.

// mimalloc: candle allocates and frees large tensors per operation; glibc's malloc hands
// them back to the kernel each time, and the page faults cost about a sixth of embedding time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    warmstart_cli::main()
}

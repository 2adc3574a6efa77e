//! The `kiln` binary: parse, run, report the error, exit with its code.

use clap::Parser;

/// Keep freed buffers in glibc's heap for reuse. By default glibc maps every block over 128 KiB
/// freshly and unmaps it on free, so each training step page-faulted its activation buffers
/// back in: about a quarter of mnist_cnn's time went to page faults and TLB shootdowns
/// (5.2 s per epoch before, 3.5 s after; mimalloc gave the same speed at 133 MiB peak RSS
/// against 86-99 MiB here). One arena for every thread: a worker thread's arena is a
/// separate mapped heap that glibc unmaps whenever it empties, whatever the trim threshold,
/// so the same faults came back with every parallel op (the spam transformer: 5.75 s per
/// epoch and 7 s of system time in 12, against 4.3 s with one arena).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters; called first thing, before any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() {
    keep_freed_memory();
    let cli = kiln::cli::Cli::parse();
    if let Err(e) = cli.exec() {
        // The reader of our results went away (`kiln runs | head -1`): nothing more to say.
        if let kiln::Error::Io { path, source } = &e {
            if path.as_os_str() == kiln::cli::STDOUT
                && source.kind() == std::io::ErrorKind::BrokenPipe
            {
                std::process::exit(0);
            }
        }
        // One line per problem (`kiln check` reports them all).
        match &e {
            kiln::Error::Many(all) => all.iter().for_each(|p| eprintln!("error: {p}")),
            e => eprintln!("error: {e}"),
        }
        std::process::exit(e.exit_code());
    }
}

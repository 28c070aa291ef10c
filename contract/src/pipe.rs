//! When a tool's reader goes away (`keel-run generate … | head`): stop quietly with status 141,
//! as Unix tools do on SIGPIPE, instead of panicking in `println!` with a backtrace. Rust ignores
//! SIGPIPE, so the write fails with EPIPE and `println!` panics; the hook turns that one panic
//! into the conventional exit and leaves every other panic to the default hook.

/// Installs the hook; call first thing in `main`.
pub fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info
            .payload_as_str()
            .is_some_and(|m| m.contains("Broken pipe"))
        {
            std::process::exit(141);
        }
        default(info)
    }));
}

//! Waiting for a file to change: inotify on Linux, polling elsewhere (and
//! wherever inotify cannot be had). Either way a wait ends by its timeout,
//! so a missed notification costs at most one poll interval.

use std::path::Path;
use std::time::Duration;

/// Waits for changes to one file (and its directory, for a replaced file).
pub struct FileWatch {
    #[cfg(target_os = "linux")]
    inotify: Option<Inotify>,
}

/// How long one wait blocks at most without a notification.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

impl FileWatch {
    pub fn new(path: &Path) -> Self {
        FileWatch {
            #[cfg(target_os = "linux")]
            inotify: Inotify::watch(path),
        }
    }

    /// Blocks until the file may have changed, or `timeout` (at most the
    /// poll interval) has passed.
    pub fn wait(&mut self, timeout: Duration) {
        let timeout = timeout.min(POLL_INTERVAL);
        #[cfg(target_os = "linux")]
        if let Some(inotify) = &mut self.inotify {
            inotify.wait(timeout);
            return;
        }
        std::thread::sleep(timeout);
    }
}

#[cfg(target_os = "linux")]
struct Inotify {
    fd: std::os::fd::OwnedFd,
}

#[cfg(target_os = "linux")]
impl Inotify {
    fn watch(path: &Path) -> Option<Inotify> {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let file = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        let dir = std::ffi::CString::new(path.parent()?.as_os_str().as_bytes()).ok()?;
        // SAFETY: inotify_init1 takes flags only and returns a new fd or -1;
        // the fd is owned from here on and closed on drop.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is a valid descriptor we just created.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        let file_events = libc::IN_MODIFY | libc::IN_ATTRIB | libc::IN_CLOSE_WRITE | libc::IN_DELETE_SELF;
        let dir_events = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_DELETE;
        // SAFETY: valid fd and NUL-terminated paths; failure returns -1.
        let watched = unsafe {
            libc::inotify_add_watch(raw, file.as_ptr(), file_events) >= 0
                && libc::inotify_add_watch(raw, dir.as_ptr(), dir_events) >= 0
        };
        watched.then_some(Inotify { fd })
    }

    /// Waits for an event or the timeout, then drains what arrived.
    fn wait(&mut self, timeout: Duration) {
        let raw = std::os::fd::AsRawFd::as_raw_fd(&self.fd);
        let mut poll = libc::pollfd { fd: raw, events: libc::POLLIN, revents: 0 };
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd; poll returns the ready count or -1.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready > 0 {
            let mut buffer = [0u8; 4096];
            // SAFETY: reads into a buffer of the stated size from a
            // non-blocking fd; the events themselves are not needed.
            while unsafe { libc::read(raw, buffer.as_mut_ptr().cast(), buffer.len()) } > 0 {}
        }
    }
}

//! Which cores threads run on. On the 2-core benchmark VM the scheduler queues a new or
//! woken thread on the core of the thread that started or woke it, and leaves it there
//! while the other core idles; these helpers put such threads on the other core.

use std::thread::JoinHandle;

/// The issuer and the worker of a statement pipeline held to two different cores. Left to
/// itself, the scheduler on the benchmark VM placed the worker on the issuer's core at every
/// wake-up and kept it there: the worker ran only while the issuer was blocked on a full queue,
/// so the two halves took turns on one core, with the other idle (measured with `sched_getcpu`
/// on both sides: one core in every run; the queue filled up, then drained in one 0.6-1 ms
/// burst). The issuer keeps the core it is on and the worker takes another one it may use; when
/// the process may use only one core, or the calls fail, nothing is changed. The issuer's own
/// set of cores is given back when the pipeline ends: a service that migrates at start-up does
/// not stay pinned.
#[cfg(target_os = "linux")]
pub(crate) struct Split {
    /// The issuer's cores before the split.
    original: libc::cpu_set_t,
    /// The issuer's core during the split.
    issuer: usize,
    worker: usize,
}

#[cfg(not(target_os = "linux"))]
pub(crate) struct Split(std::convert::Infallible);

#[cfg(target_os = "linux")]
impl Split {
    /// Pins the calling thread to its current core and picks another for the worker.
    pub(crate) fn take() -> Option<Split> {
        let (original, here, worker) = another_core()?;
        if !set_this_thread(&only(here)) {
            return None;
        }
        Some(Split {
            original,
            issuer: here,
            worker,
        })
    }

    #[cfg(test)]
    pub(crate) fn worker_core(&self) -> usize {
        self.worker
    }

    /// Holds the worker to its core (from here, so it holds before `start` returns).
    /// The worker was started on the issuer's one core; if it cannot be moved, the split
    /// is given up (both threads on that one core would be worse than no split), and
    /// both get the issuer's original cores.
    pub(crate) fn pin_worker(self, worker: &JoinHandle<()>) -> Option<Split> {
        if set_thread(worker, &only(self.worker)) {
            return Some(self);
        }
        set_thread(worker, &self.original);
        self.undo();
        None
    }

    /// Gives the calling thread (the issuer) its cores back, unless its cores were
    /// changed during the split: that change is someone else's, and it stands.
    pub(crate) fn undo(self) {
        let unchanged =
            this_thread().is_some_and(|now| members(&now).eq(std::iter::once(self.issuer)));
        if unchanged {
            set_this_thread(&self.original);
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl Split {
    pub(crate) fn take() -> Option<Split> {
        None
    }

    #[cfg(test)]
    pub(crate) fn worker_core(&self) -> usize {
        match self.0 {}
    }

    pub(crate) fn pin_worker(self, _: &JoinHandle<()>) -> Option<Split> {
        match self.0 {}
    }

    pub(crate) fn undo(self) {}
}

/// The cores the calling thread may run on.
#[cfg(target_os = "linux")]
fn this_thread() -> Option<libc::cpu_set_t> {
    // SAFETY: `cpu_set_t` is plain data; the call gets its true size and only writes it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        (libc::sched_getaffinity(0, size, &mut set) == 0).then_some(set)
    }
}

#[cfg(target_os = "linux")]
fn members(set: &libc::cpu_set_t) -> impl Iterator<Item = usize> + '_ {
    // SAFETY: every index is below CPU_SETSIZE, the set's size.
    (0..libc::CPU_SETSIZE as usize).filter(move |&c| unsafe { libc::CPU_ISSET(c, set) })
}

/// [`this_thread`]'s cores, listed.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn of_this_thread() -> Vec<usize> {
    this_thread().map_or_else(Vec::new, |set| members(&set).collect())
}

#[cfg(target_os = "linux")]
fn only(core: usize) -> libc::cpu_set_t {
    set_of(&[core])
}

/// The set of `cores`, each below CPU_SETSIZE (found in a set).
#[cfg(target_os = "linux")]
fn set_of(cores: &[usize]) -> libc::cpu_set_t {
    // SAFETY: as above; `CPU_SET` only writes the bit of a core below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cores {
            libc::CPU_SET(c, &mut set);
        }
        set
    }
}

#[cfg(target_os = "linux")]
fn set_this_thread(set: &libc::cpu_set_t) -> bool {
    // SAFETY: `set` is a valid `cpu_set_t` of the size passed.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) == 0 }
}

#[cfg(target_os = "linux")]
fn set_thread<T>(thread: &JoinHandle<T>, set: &libc::cpu_set_t) -> bool {
    use std::os::unix::thread::JoinHandleExt;
    // SAFETY: the thread is alive (its handle is not joined yet); `set` is a valid
    // `cpu_set_t` of the size passed.
    unsafe {
        libc::pthread_setaffinity_np(
            thread.as_pthread_t(),
            std::mem::size_of::<libc::cpu_set_t>(),
            set,
        ) == 0
    }
}

/// Sets the calling thread's cores to `cores` (all of which it may use).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn set_this_thread_to(cores: &[usize]) -> bool {
    set_this_thread(&set_of(cores))
}

/// Starts a thread on another core than the calling thread's, where it runs at once instead
/// of waiting for its parent to sleep: the revision files read ahead while an upgrade opens
/// its database started 0.7-0.8 ms late on the parent's core, after the parent had already
/// begun to wait for them. The thread gets the parent's cores back before `f` runs, so the
/// threads it starts in turn (parsers of a long history) spread as usual. Where there is
/// no other core, or it cannot be set, the thread starts as any other.
pub(crate) fn spawn_elsewhere<T, F>(
    builder: std::thread::Builder,
    f: F,
) -> std::io::Result<JoinHandle<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    #[cfg(target_os = "linux")]
    if let Some((original, _, elsewhere)) = another_core() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let moved = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&moved);
        let thread = builder.spawn(move || {
            // Taking the cores back before the move would leave the thread on one core.
            while !seen.load(Ordering::Acquire) {
                std::thread::park();
            }
            set_this_thread(&original);
            f()
        })?;
        set_thread(&thread, &only(elsewhere));
        moved.store(true, Ordering::Release);
        thread.thread().unpark();
        return Ok(thread);
    }
    builder.spawn(f)
}

/// The calling thread's cores, the one of them it runs on, and another one.
#[cfg(target_os = "linux")]
fn another_core() -> Option<(libc::cpu_set_t, usize, usize)> {
    let original = this_thread()?;
    // SAFETY: no arguments; it only reports the calling thread's core.
    let here = usize::try_from(unsafe { libc::sched_getcpu() }).ok()?;
    if !members(&original).any(|c| c == here) {
        return None;
    }
    let other = members(&original).find(|&c| c != here)?;
    Some((original, here, other))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The thread starts on another core and runs with its parent's cores.
    #[test]
    fn a_thread_started_elsewhere_starts_on_another_core_with_its_parents_cores() {
        let parents = of_this_thread();
        if parents.len() < 2 {
            eprintln!("one core: nothing to place");
            return;
        }
        // SAFETY: no arguments; it only reports the calling thread's core.
        let core = || unsafe { libc::sched_getcpu() };
        let before = core();
        let thread = spawn_elsewhere(std::thread::Builder::new(), move || {
            (core(), of_this_thread())
        })
        .unwrap();
        // The parent keeps its core busy, as an upgrade does while the thread reads ahead.
        let busy = std::time::Instant::now();
        while busy.elapsed() < std::time::Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        let after = core();
        let (started_on, cores) = thread.join().unwrap();
        assert_eq!(cores, parents);
        // The parent's core when the thread was placed is known only if the parent stayed.
        if before == after {
            assert_ne!(started_on, before);
        }
    }
}

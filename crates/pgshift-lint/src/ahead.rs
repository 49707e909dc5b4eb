//! Work done ahead on other threads, handed over in order: `check` parses the files ahead of
//! the one it is checking (parsing is most of its time, and each file parses on its own), while
//! the checks themselves run one file after another, in order, because each file's context
//! is what the files before it left.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// How many items a helper thread may have done beyond the one being consumed: a bound on
/// what is held in memory at once.
const LOOKAHEAD: usize = 8;

/// Calls `each(i, &work(&items[i]))` for every item, in order, on the calling thread, while
/// `threads - 1` helper threads (and the calling thread, when it would otherwise wait) run
/// `work` on the items ahead; the helpers also free the results once `each` is done with
/// them (a parse tree is thousands of small allocations, best freed where they were made).
/// The result is the same as the sequential loop whatever `threads` is; at most
/// [`LOOKAHEAD`] results wait at a time. A panic in `work` or `each` is raised on the calling
/// thread once the helpers have stopped.
pub fn in_order<T, R, W, E>(items: &[T], threads: usize, work: W, mut each: E)
where
    T: Sync,
    R: Send,
    W: Fn(&T) -> R + Sync,
    E: FnMut(usize, &R),
{
    if threads <= 1 || items.len() < 2 {
        for (i, item) in items.iter().enumerate() {
            each(i, &work(item));
        }
        return;
    }
    let shared = Shared {
        next: AtomicUsize::new(0),
        state: Mutex::new(State {
            consumed: 0,
            done: BTreeMap::new(),
            used: Vec::new(),
            stop: false,
        }),
        changed: Condvar::new(),
    };
    std::thread::scope(|scope| {
        // More helpers than items within the lookahead would only wait.
        for _ in 1..threads.min(items.len()).min(LOOKAHEAD + 1) {
            scope.spawn(|| shared.help(items, &work));
        }
        // Stops the helpers however the loop below ends (a panic included).
        let _stop = StopOnDrop(&shared);
        for i in 0..items.len() {
            let result = shared.take(i, items, &work);
            match result {
                Ok(r) => {
                    each(i, &r);
                    shared.lock().used.push(r);
                    shared.changed.notify_all();
                }
                Err(panic) => resume_unwind(panic),
            }
        }
    });
}

type Outcome<R> = Result<R, Box<dyn std::any::Any + Send>>;

struct State<R> {
    /// Items handed to `each` so far.
    consumed: usize,
    /// Results done and not yet handed over.
    done: BTreeMap<usize, Outcome<R>>,
    /// Results `each` is done with, for a helper to free.
    used: Vec<R>,
    stop: bool,
}

struct Shared<R> {
    /// The next item nobody has started.
    next: AtomicUsize,
    state: Mutex<State<R>>,
    changed: Condvar,
}

impl<R> Shared<R> {
    fn lock(&self) -> MutexGuard<'_, State<R>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A helper thread: frees the results `each` is done with, and takes the next item while
    /// it is within the lookahead.
    fn help<T, W: Fn(&T) -> R>(&self, items: &[T], work: &W) {
        loop {
            {
                let mut state = self.lock();
                loop {
                    if !state.used.is_empty() {
                        let used = std::mem::take(&mut state.used);
                        drop(state);
                        drop(used);
                        state = self.lock();
                        continue;
                    }
                    if state.stop {
                        return;
                    }
                    let next = self.next.load(Ordering::SeqCst);
                    if next >= items.len() {
                        return;
                    }
                    if next < state.consumed + LOOKAHEAD {
                        break;
                    }
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            if i >= items.len() {
                return;
            }
            let result = catch_unwind(AssertUnwindSafe(|| work(&items[i])));
            self.lock().done.insert(i, result);
            self.changed.notify_all();
        }
    }

    /// Item `i`'s result: done by a helper, or done here. While a helper is still at item
    /// `i`, this thread does the next item nobody has started (within the lookahead) instead
    /// of waiting idle.
    fn take<T, W: Fn(&T) -> R>(&self, i: usize, items: &[T], work: &W) -> Outcome<R> {
        let mut state = self.lock();
        loop {
            if let Some(result) = state.done.remove(&i) {
                state.consumed = i + 1;
                drop(state);
                self.changed.notify_all();
                return result;
            }
            let next = self.next.load(Ordering::SeqCst);
            if next < items.len()
                && next < i + LOOKAHEAD
                && self
                    .next
                    .compare_exchange(next, next + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                drop(state);
                let result = catch_unwind(AssertUnwindSafe(|| work(&items[next])));
                if next == i {
                    self.lock().consumed = i + 1;
                    self.changed.notify_all();
                    return result;
                }
                state = self.lock();
                state.done.insert(next, result);
                continue;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

struct StopOnDrop<'a, R>(&'a Shared<R>);

impl<R> Drop for StopOnDrop<'_, R> {
    fn drop(&mut self) {
        self.0.lock().stop = true;
        self.0.changed.notify_all();
    }
}

/// The threads `check` uses when not told: the machine's parallelism.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order_whatever_the_threads() {
        let items: Vec<u64> = (0..500).collect();
        for threads in [1, 2, 3, 8] {
            let mut seen = Vec::new();
            in_order(
                &items,
                threads,
                |n| {
                    // Uneven work, so helpers finish out of order.
                    if n % 7 == 0 {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                    }
                    n * n
                },
                |i, r| seen.push((i, *r)),
            );
            let expected: Vec<(usize, u64)> = items
                .iter()
                .map(|&n| (usize::try_from(n).expect("small"), n * n))
                .collect();
            assert_eq!(seen, expected, "threads = {threads}");
        }
    }

    #[test]
    fn a_panic_in_the_work_reaches_the_caller_and_the_helpers_stop() {
        let items: Vec<u32> = (0..200).collect();
        let caught = std::panic::catch_unwind(|| {
            in_order(
                &items,
                2,
                |&n| {
                    assert!(n != 150, "item 150 fails");
                    n
                },
                |_, _| {},
            );
        });
        assert!(caught.is_err());
    }
}

//! Values made on first use, for what an idle instance may never need.
//!
//! A moka cache allocates its read and write channels (~28 KB) when it is
//! built; the fifteen an instance made at start were half of an idle
//! instance's heap (BENCHMARKS.md, idle RSS), most of them for features a
//! given instance may never serve (SABR layouts, seeks, egress routes,
//! sign-in readings). Behind [`Lazy`] each is built by its first reader.

use std::sync::LazyLock;

/// `T`, made by the closure the first time it is read (then shared);
/// derefs to `T`, so a field's readers do not change.
pub type Lazy<T> = LazyLock<T, Box<dyn FnOnce() -> T + Send>>;

/// A [`Lazy`] that `make` makes.
pub fn lazy<T>(make: impl FnOnce() -> T + Send + 'static) -> Lazy<T> {
    LazyLock::new(Box::new(make))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn made_once_by_the_first_reader() {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let value = lazy(|| {
            MADE.fetch_add(1, Ordering::SeqCst);
            vec![1, 2, 3]
        });
        assert_eq!(MADE.load(Ordering::SeqCst), 0, "nothing made before a read");
        assert_eq!(value.len(), 3);
        assert_eq!(value[2], 3);
        assert_eq!(MADE.load(Ordering::SeqCst), 1);
    }
}

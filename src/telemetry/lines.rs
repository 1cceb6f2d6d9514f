//! The log writer: lines are appended to one shared buffer and written by a
//! thread of their own, a batch at a time.
//!
//! Why not a queue with a line per slot (tracing-appender's): each line
//! sent to a sleeping writer thread wakes it, and on a busy server that is
//! a futex wake and two context switches per request on cores the workers
//! need. Here the writer thread is woken by the first line into an empty
//! buffer, then lingers a moment so the lines that follow join the same
//! `write(2)`: a few wakes per second under any load, none when idle.
//! Warnings and errors are written at once, and a full buffer makes the
//! next writer wait for the drain rather than drop a line.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long the writer thread waits after the first line of a batch for
/// more to join it: the most a line waits before it reaches the sink.
const LINGER: Duration = Duration::from_millis(20);

/// Bytes held before a writer waits for the drain (a stalled sink must
/// not grow the buffer without bound).
const CAPACITY: usize = 4 * 1024 * 1024;

/// A batch this big is written without waiting out the linger.
const EAGER: usize = 64 * 1024;

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// Written at once: a warning or an error is waiting, or the buffer is
    /// past [`EAGER`].
    urgent: bool,
    stopping: bool,
}

struct Shared {
    state: Mutex<State>,
    /// The writer thread waits here for lines.
    filled: Condvar,
    /// Writers wait here for room.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the fmt layer writes through; cheap to clone.
#[derive(Clone)]
pub struct Lines(Arc<Shared>);

/// Stops the writer thread once it has written every line; `main` keeps it
/// until the server has stopped.
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.filled.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A writer to `sink` and the guard of its thread.
pub fn spawn(sink: impl Write + Send + 'static) -> std::io::Result<(Lines, Guard)> {
    let shared = Arc::new(Shared { state: Mutex::default(), filled: Condvar::new(), drained: Condvar::new() });
    let for_thread = shared.clone();
    let thread =
        std::thread::Builder::new().name("reelay-log".into()).spawn(move || write_batches(&for_thread, sink))?;
    Ok((Lines(shared.clone()), Guard { shared, thread: Some(thread) }))
}

fn write_batches(shared: &Shared, mut sink: impl Write) {
    let mut batch = Vec::new();
    loop {
        {
            let mut s = shared.lock();
            while s.buf.is_empty() && !s.stopping {
                s = shared.filled.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
            if !s.urgent && !s.stopping {
                // Let the lines that follow the first one join its batch.
                s = shared.filled.wait_timeout(s, LINGER).unwrap_or_else(PoisonError::into_inner).0;
            }
            if s.buf.is_empty() && s.stopping {
                return;
            }
            std::mem::swap(&mut s.buf, &mut batch);
            s.urgent = false;
        }
        shared.drained.notify_all();
        // A sink that fails (a closed pipe) loses these lines; nothing
        // better can be done with them.
        let _ = sink.write_all(&batch).and_then(|()| sink.flush());
        batch.clear();
        if batch.capacity() > EAGER * 4 {
            batch.shrink_to(EAGER);
        }
    }
}

impl Lines {
    fn append(&self, line: &[u8], urgent: bool) {
        let shared = &self.0;
        let mut s = shared.lock();
        while s.buf.len() + line.len() > CAPACITY && !s.buf.is_empty() && !s.stopping {
            s.urgent = true;
            shared.filled.notify_one();
            s = shared.drained.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        let first = s.buf.is_empty();
        s.buf.extend_from_slice(line);
        let wake = urgent || s.buf.len() >= EAGER;
        if wake {
            s.urgent = true;
        }
        drop(s);
        // The thread sleeps without a timeout only while the buffer is
        // empty, and lingers on its own after the first line.
        if first || wake {
            shared.filled.notify_one();
        }
    }
}

/// One event's line, handed over whole (the fmt layer writes each event
/// with one `write_all`).
pub struct LineWriter {
    lines: Lines,
    urgent: bool,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lines.append(buf, self.urgent);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { lines: self.clone(), urgent: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter {
        LineWriter { lines: self.clone(), urgent: *meta.level() <= Level::WARN }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_whole_and_in_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (lines, guard) = spawn(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        let mut w = lines.make_writer();
                        // Lines bigger than the buffer's room test the wait for the drain.
                        let pad = if i % 1000 == 0 { 300_000 } else { 10 };
                        w.write_all(format!("{t} {i} {}\n", "x".repeat(pad)).as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let mut parts = line.split(' ');
            let t: usize = parts.next().unwrap().parse().unwrap();
            let i: usize = parts.next().unwrap().parse().unwrap();
            assert_eq!(i, next[t], "thread {t}'s lines in order");
            next[t] += 1;
        }
        assert_eq!(next, [20_000; 4]);
    }

    #[test]
    fn lines_reach_the_sink_while_the_guard_lives() {
        let sink = Sink::default();
        let (lines, _guard) = spawn(sink.clone()).unwrap();
        for (text, urgent) in [(&b"a warning\n"[..], true), (&b"an access line\n"[..], false)] {
            let before = sink.0.lock().unwrap().len();
            LineWriter { lines: lines.clone(), urgent }.write_all(text).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while sink.0.lock().unwrap().len() < before + text.len() {
                assert!(std::time::Instant::now() < deadline, "the line reaches the sink");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

//! A progress bar on stderr while ingesting, shown only when stderr is a terminal.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trawl_ingest::Progress;

/// Bytes of input read, files done, events stored.
pub(crate) struct Bar {
    bar: ProgressBar,
    files: AtomicUsize,
    done: AtomicUsize,
    stored: AtomicU64,
}

impl Bar {
    pub(crate) fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ({eta})",
            )
            .expect("valid template"),
        );
        Self { bar, files: AtomicUsize::new(0), done: AtomicUsize::new(0), stored: AtomicU64::new(0) }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn message(&self) {
        self.bar.set_message(format!(
            "{}/{} files, {} events stored",
            self.done.load(Ordering::Relaxed),
            self.files.load(Ordering::Relaxed),
            self.stored.load(Ordering::Relaxed)
        ));
    }
}

impl Progress for Bar {
    fn start(&self, files: usize, bytes: u64) {
        self.bar.set_length(bytes);
        self.files.store(files, Ordering::Relaxed);
        self.message();
    }

    fn file_done(&self, bytes: u64, _events: u64) {
        self.bar.inc(bytes);
        self.done.fetch_add(1, Ordering::Relaxed);
        self.message();
    }

    fn committed(&self, events: u64) {
        self.stored.fetch_add(events, Ordering::Relaxed);
        self.message();
    }
}

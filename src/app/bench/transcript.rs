//! What a bench printed, kept so that `petal bench --record FILE …` can append it to a
//! Markdown file (docs/benchmarks.md) with the command line, the date and the machine.
//! Bench code prints through [`report!`](crate::report), which prints the line and keeps it.

use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;

static LINES: Mutex<String> = Mutex::new(String::new());

/// Keeps one printed line.
pub fn keep(line: &str) {
    let mut lines = LINES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    lines.push_str(line);
    lines.push('\n');
}

/// Prints a line of figures and keeps it for `--record`.
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        println!("{line}");
        $crate::app::bench::transcript::keep(&line);
    }};
}

/// Appends what was printed, under a heading with the date and machine and the command
/// line, to the Markdown file at `path`.
pub fn append_to(path: &Path) -> anyhow::Result<()> {
    let command = std::iter::once("petal".to_owned()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ");
    let lines = LINES.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let section = format!(
        "\n### {}, {} (recorded by the command)\n\n`{command}`\n\n```text\n{lines}```\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        super::machine()
    );
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {} to record the figures", path.display()))?;
    file.write_all(section.as_bytes()).with_context(|| format!("appending to {}", path.display()))
}

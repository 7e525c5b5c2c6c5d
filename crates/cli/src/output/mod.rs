//! How the CLI prints: `-o table|wide|json|jsonl|yaml|name` for every listing
//! and object, and the live timeline of a run ([`timeline`]).
//!
//! Tables and names are for people and `xargs`; `json`, `jsonl` and `yaml`
//! print the API's own documents, so a script sees every field the API has.

mod listings;
mod timeline;

use serde::Serialize;

pub use listings::environment_summary;
pub use timeline::{event_line, follow, run_summary};

/// `print!` that ends the process quietly when stdout is closed, as
/// `hubwright env list | head -1` does, instead of panicking.
macro_rules! emit {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(&format!($($arg)*))
    };
}

/// `println!` that ends the process quietly when stdout is closed.
macro_rules! emitln {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(&format!("{}\n", format!($($arg)*)))
    };
}

pub(crate) use {emit, emitln};

/// Writes `text` to stdout; a reader that went away (EPIPE) ends the process
/// with success, as Unix tools do when `head` has read enough.
pub fn write_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {err}");
        std::process::exit(1);
    }
}

/// How API commands print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The table with more columns.
    Wide,
    /// One JSON document (an array for lists).
    Json,
    /// One JSON object per line, for streams and `jq -c`.
    Jsonl,
    /// YAML.
    Yaml,
    /// Only the names (environments) or ids (runs, tokens), one per line, for `xargs`.
    Name,
}

/// Something the CLI lists: its columns, and the name `-o name` prints.
pub trait Listing: Serialize {
    /// Column headers for `-o table`.
    const HEADERS: &'static [&'static str];
    /// Headers of the extra columns `-o wide` adds.
    const WIDE_HEADERS: &'static [&'static str] = &[];
    /// The row's cells, one per header.
    fn cells(&self) -> Vec<String>;
    /// The extra cells for `-o wide`, one per wide header.
    fn wide_cells(&self) -> Vec<String> {
        Vec::new()
    }
    /// What `-o name` prints: a name or id another command accepts.
    fn name(&self) -> String;
}

/// Prints `items` in `format`.
pub fn print_list<T: Listing>(format: Format, items: &[T]) {
    match format {
        Format::Table | Format::Wide => emit!("{}", table(items, format == Format::Wide, true)),
        Format::Json => emitln!("{}", json(&items)),
        Format::Jsonl => {
            for item in items {
                emitln!("{}", json(item));
            }
        }
        Format::Yaml => emit!("{}", yaml(&items)),
        Format::Name => {
            for item in items {
                emitln!("{}", item.name());
            }
        }
    }
}

/// Prints one object: `human` for tables, the document otherwise.
pub fn print_one<T: Serialize>(
    format: Format,
    item: &T,
    name: &str,
    human: impl FnOnce() -> String,
) {
    match format {
        Format::Table | Format::Wide => emit!("{}", human()),
        Format::Json => emitln!("{}", json(item)),
        Format::Jsonl => emitln!("{}", json(item)),
        Format::Yaml => emit!("{}", yaml(item)),
        Format::Name => emitln!("{name}"),
    }
}

/// Rows of `items` as aligned columns, with a header line when `header`.
pub fn table<T: Listing>(items: &[T], wide: bool, header: bool) -> String {
    let headers: Vec<&str> = if wide {
        T::HEADERS.iter().chain(T::WIDE_HEADERS).copied().collect()
    } else {
        T::HEADERS.to_vec()
    };
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let mut cells = item.cells();
            if wide {
                cells.extend(item.wide_cells());
            }
            cells
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}   "));
            }
        }
        out.push('\n');
        out
    };
    let mut out = String::new();
    if header {
        let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
        out.push_str(&line(&header));
    }
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

/// Compact JSON of a value the CLI itself holds (it always serializes).
pub fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"))
}

fn yaml<T: Serialize + ?Sized>(value: &T) -> String {
    serde_yaml_ng::to_string(value).unwrap_or_else(|err| format!("error: {err}\n"))
}

/// A timestamp as tables show it.
pub fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        name: &'static str,
        phase: &'static str,
    }

    impl Listing for Row {
        const HEADERS: &'static [&'static str] = &["NAME", "PHASE"];
        const WIDE_HEADERS: &'static [&'static str] = &["LEN"];
        fn cells(&self) -> Vec<String> {
            vec![self.name.to_owned(), self.phase.to_owned()]
        }
        fn wide_cells(&self) -> Vec<String> {
            vec![self.name.len().to_string()]
        }
        fn name(&self) -> String {
            self.name.to_owned()
        }
    }

    #[test]
    fn columns_align_on_the_widest_cell_and_wide_adds_columns() {
        let rows = [
            Row {
                name: "a-long-name",
                phase: "ready",
            },
            Row {
                name: "b",
                phase: "failed",
            },
        ];
        assert_eq!(
            table(&rows, false, true),
            "NAME          PHASE\na-long-name   ready\nb             failed\n"
        );
        assert_eq!(
            table(&rows, true, false),
            "a-long-name   ready    11\nb             failed   1\n"
        );
    }
}

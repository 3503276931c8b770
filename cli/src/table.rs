//! Tables and quantities as people read them.

use std::time::Duration;

/// Columns padded to their widest cell, the first left-aligned, under a header.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<const COLUMNS: usize>(header: [&str; COLUMNS]) -> Self {
        Self {
            rows: vec![header.iter().map(|cell| cell.to_string()).collect()],
        }
    }

    pub fn row<const COLUMNS: usize>(&mut self, cells: [String; COLUMNS]) {
        self.rows.push(cells.into());
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|column| {
                self.rows
                    .iter()
                    .filter_map(|row| row.get(column))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut text = String::new();
        for (index, row) in self.rows.iter().enumerate() {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            text.push_str(line.join("  ").trim_end());
            text.push('\n');
            if index == 0 {
                let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
                text.push_str(&rule.join("  "));
                text.push('\n');
            }
        }
        text
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// `1 MiB`, `4 KiB`, `1.5 KiB`, `100 bytes`.
pub fn bytes(count: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if count >= size {
            let value = count as f64 / size as f64;
            return if count % size == 0 {
                format!("{} {unit}", count / size)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{count} bytes")
}

/// `12.3 µs`, `4.56 ms`, `1.23 s`.
pub fn duration(time: Duration) -> String {
    let nanoseconds = time.as_nanos() as f64;
    if nanoseconds < 1e3 {
        format!("{nanoseconds:.0} ns")
    } else if nanoseconds < 1e6 {
        format!("{:.1} µs", nanoseconds / 1e3)
    } else if nanoseconds < 1e9 {
        format!("{:.2} ms", nanoseconds / 1e6)
    } else {
        format!("{:.2} s", nanoseconds / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(100, "100 bytes")]
    #[case(4096, "4 KiB")]
    #[case(1536, "1.5 KiB")]
    #[case(1 << 20, "1 MiB")]
    #[case(3 << 30, "3 GiB")]
    fn byte_counts(#[case] count: u64, #[case] text: &str) {
        assert_eq!(bytes(count), text);
    }

    #[rstest]
    #[case(Duration::from_nanos(640), "640 ns")]
    #[case(Duration::from_nanos(12_340), "12.3 µs")]
    #[case(Duration::from_micros(4_560), "4.56 ms")]
    #[case(Duration::from_millis(1_234), "1.23 s")]
    fn durations(#[case] time: Duration, #[case] text: &str) {
        assert_eq!(duration(time), text);
    }

    #[test]
    fn columns_line_up_under_the_header() {
        let mut table = Table::new(["card", "state"]);
        table.row(["primary".into(), "in sync".into()]);
        table.row(["mirror".into(), "stale".into()]);
        assert_eq!(
            table.render(),
            "card     state\n-------  -------\nprimary  in sync\nmirror   stale\n"
        );
    }
}

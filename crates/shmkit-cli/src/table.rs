//! Plain tables in the style of `ipcs` and `lsipc`: aligned columns, a header, no borders, so
//! that `awk` and `cut` work on them; fitted to the terminal.
//!
//! Hand-rolled because it must stay fast for tens of thousands of rows (comfy-table measures
//! every cell for wrapping). Cells are already quoted for the terminal (`quote`), so they hold
//! no control characters and their width is their count of characters.

/// How a table is laid out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layout {
    /// The width to fit, in columns (`None`: any width, nothing is cut).
    pub width: Option<usize>,
    /// No header line.
    pub no_headings: bool,
    /// One space between cells, no alignment, nothing cut (`lsipc --raw`).
    pub raw: bool,
}

impl Layout {
    /// The terminal's width when stdout is one, else `$COLUMNS` when set (as util-linux
    /// does), else none: a pipe or a file gets every character.
    pub fn detect() -> Layout {
        let tty = rustix::termios::isatty(std::io::stdout())
            .then(|| rustix::termios::tcgetwinsize(std::io::stdout()).ok())
            .flatten()
            .map(|ws| ws.ws_col as usize)
            .filter(|w| *w > 0);
        // A $COLUMNS too small to hold a table is ignored, as an unparsable one is.
        let usable = |w: &usize| *w >= 20;
        let env = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .filter(usable);
        Layout {
            width: env.or(tty.filter(usable)),
            ..Layout::default()
        }
    }
}

/// A column: its header and whether it may be cut to fit (names, holders, details) or must
/// stay whole (numbers, modes, times).
pub struct Column {
    pub header: &'static str,
    pub flexible: bool,
}

impl Column {
    /// Columns that are never cut, one per header.
    pub fn fixed(headers: &[&'static str]) -> Vec<Column> {
        headers
            .iter()
            .map(|&header| Column {
                header,
                flexible: false,
            })
            .collect()
    }
}

/// Without a width to fit (a pipe), cells of a flexible column longer than this do not widen
/// the column for the other rows: they overflow their own row.
const FLEX_CAP: usize = 40;
/// A flexible column is not cut below this.
const FLEX_MIN: usize = 10;
const CUT: char = '…';

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Renders the table.
pub fn render(columns: &[Column], rows: &[Vec<String>], layout: Layout) -> String {
    let mut out = String::with_capacity(rows.len() * 96 + 128);
    if layout.raw {
        if !layout.no_headings {
            let h: Vec<&str> = columns.iter().map(|c| c.header).collect();
            out.push_str(&h.join(" "));
            out.push('\n');
        }
        for r in rows {
            // Raw cells are single words: an empty or spaced cell would shift the fields.
            let cells: Vec<String> = r
                .iter()
                .map(|c| {
                    if c.is_empty() {
                        "-".to_string()
                    } else {
                        c.replace(' ', "\\x20")
                    }
                })
                .collect();
            out.push_str(&cells.join(" "));
            out.push('\n');
        }
        return out;
    }
    let mut width: Vec<usize> = columns
        .iter()
        .map(|c| {
            if layout.no_headings {
                1
            } else {
                chars(c.header)
            }
        })
        .collect();
    for r in rows {
        for ((w, c), col) in width.iter_mut().zip(r).zip(columns) {
            let n = chars(c);
            // With a width to fit, a long cell takes the room there is and is cut only if it
            // must be; without one, it must not pad every other row to its length.
            if !col.flexible || n <= FLEX_CAP || layout.width.is_some() {
                *w = (*w).max(n);
            }
        }
    }
    let last = columns.len().saturating_sub(1);
    // Fit: two spaces between columns, one if that is not enough, then cut the flexible
    // columns (the rightmost first) down to FLEX_MIN.
    let mut gap = 2;
    if let Some(limit) = layout.width {
        let total = |w: &[usize], gap: usize| w.iter().sum::<usize>() + gap * last;
        if total(&width, gap) > limit {
            gap = 1;
        }
        for i in (0..columns.len()).rev() {
            let over = total(&width, gap).saturating_sub(limit);
            if over == 0 {
                break;
            }
            if columns[i].flexible {
                let floor = FLEX_MIN.max(chars(columns[i].header)).min(width[i]);
                width[i] = width[i].saturating_sub(over).max(floor);
            }
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut pending = 0usize; // overflow of earlier cells, taken out of later padding
        for (i, c) in cells.enumerate() {
            let n = chars(c);
            let cut = layout.width.is_some() && columns[i].flexible && n > width[i];
            if cut {
                out.extend(c.chars().take(width[i].saturating_sub(1)));
                out.push(CUT);
            } else {
                out.push_str(c);
            }
            if i < last {
                let used = if cut { width[i] } else { n };
                let want = width[i] + gap;
                let pad = want.saturating_sub(used + pending).max(1);
                pending = (used + pending + pad).saturating_sub(want);
                for _ in 0..pad {
                    out.push(' ');
                }
            }
        }
        // No trailing spaces: the last cell ends the line.
        while out.ends_with(' ') {
            out.pop();
        }
        out.push('\n');
    };
    if !layout.no_headings {
        line(&mut out, &mut columns.iter().map(|c| c.header));
    }
    for r in rows {
        line(&mut out, &mut r.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<Column> {
        vec![
            Column {
                header: "A",
                flexible: false,
            },
            Column {
                header: "NAME",
                flexible: true,
            },
            Column {
                header: "N",
                flexible: false,
            },
        ]
    }

    #[test]
    fn aligned_and_without_trailing_spaces() {
        let rows = vec![vec!["xyz".into(), "n".into(), "1".into()]];
        assert_eq!(
            render(&cols(), &rows, Layout::default()),
            "A    NAME  N\nxyz  n     1\n"
        );
    }

    #[test]
    fn one_long_name_does_not_widen_every_row() {
        let long = "x".repeat(100);
        let rows = vec![
            vec!["a".into(), "short".into(), "1".into()],
            vec!["b".into(), long.clone(), "2".into()],
        ];
        let t = render(&cols(), &rows, Layout::default());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[1], "a  short  1");
        assert!(
            lines[2].contains(&long),
            "nothing is cut without a width: {t}"
        );
        assert!(lines[1].len() < 60);
    }

    #[test]
    fn cut_to_the_width_with_a_marker() {
        let rows = vec![vec!["a".into(), "y".repeat(100), "2".into()]];
        let t = render(
            &cols(),
            &rows,
            Layout {
                width: Some(20),
                ..Layout::default()
            },
        );
        for l in t.lines() {
            assert!(l.chars().count() <= 20, "{l:?}");
        }
        assert!(t.contains('…'));
    }

    #[test]
    fn a_wide_terminal_cuts_nothing_that_fits() {
        let name = "z".repeat(60);
        let rows = vec![vec!["a".into(), name.clone(), "2".into()]];
        let wide = Layout {
            width: Some(200),
            ..Layout::default()
        };
        let t = render(&cols(), &rows, wide);
        assert!(t.contains(&name) && !t.contains('…'), "{t}");
    }

    #[test]
    fn raw_is_one_space_and_no_empty_cells() {
        let rows = vec![vec!["a".into(), "two words".into(), "".into()]];
        let t = render(
            &cols(),
            &rows,
            Layout {
                raw: true,
                no_headings: true,
                ..Layout::default()
            },
        );
        assert_eq!(t, "a two\\x20words -\n");
    }
}

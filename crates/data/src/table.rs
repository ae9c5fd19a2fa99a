//! A table read once from CSV or Parquet, with typed column access that reports bad cells precisely.

use crate::DataError;
use chrono::NaiveDate;
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// A table read from a CSV or Parquet file. Columns are pulled out as plain vectors with
/// [`Table::f64_column`], [`Table::str_column`] and [`Table::time_column`]; each reports the first
/// bad cell by file, column and 1-based data row.
#[derive(Debug, Clone)]
pub struct Table {
    path: PathBuf,
    df: DataFrame,
}

/// Whether a time column held calendar dates or plain numbers (years, period indices, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeKind {
    /// ISO dates (`YYYY-MM-DD`); values are days since 1970-01-01.
    Date,
    /// Numbers used as they are.
    Numeric,
}

/// A parsed time column: one numeric value per row (days since the epoch for dates) and the
/// original text, so outputs can print times the way the user wrote them.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeColumn {
    pub kind: TimeKind,
    pub values: Vec<f64>,
    pub labels: Vec<String>,
}

impl TimeColumn {
    /// Parses a time given on the command line or in a config the same way as the column:
    /// a date for a date column, a number for a numeric one.
    pub fn parse_point(&self, s: &str) -> Result<f64, String> {
        match self.kind {
            TimeKind::Date => parse_date(s).ok_or_else(|| format!("{s:?} is not a date (expected YYYY-MM-DD)")),
            TimeKind::Numeric => s.trim().parse::<f64>().map_err(|_| format!("{s:?} is not a number")),
        }
    }

    /// Formats a numeric time value back into the column's own notation.
    pub fn format(&self, v: f64) -> String {
        match self.kind {
            TimeKind::Date => format_date(v),
            TimeKind::Numeric => {
                if v.fract() == 0.0 {
                    format!("{}", v as i64)
                } else {
                    format!("{v}")
                }
            }
        }
    }
}

/// Days since 1970-01-01 for an ISO date (a trailing time of day is accepted and ignored).
pub fn parse_date(s: &str) -> Option<f64> {
    let s = s.trim();
    let day = s.get(..10).unwrap_or(s);
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    if s.len() > 10 && !s[10..].starts_with([' ', 'T']) {
        return None;
    }
    Some((d - NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days() as f64)
}

/// The ISO date of a day number produced by [`parse_date`].
pub fn format_date(days: f64) -> String {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid epoch");
    match epoch.checked_add_signed(chrono::TimeDelta::days(days.round() as i64)) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => format!("{days}"),
    }
}

impl Table {
    /// Reads a `.csv` or `.parquet` file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Err(DataError::Io {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        if path.is_dir() {
            return Err(DataError::IsDirectory { path });
        }
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
        let df = match ext.as_str() {
            "csv" | "txt" => {
                let bytes = std::fs::read(&path).map_err(|e| DataError::Io { path: path.clone(), source: e })?;
                check_csv_shape(&path, &bytes)?;
                CsvReadOptions::default()
                    .with_has_header(true)
                    .with_infer_schema_length(None)
                    .into_reader_with_file_handle(std::io::Cursor::new(bytes))
                    .finish()
                    .map_err(|e| DataError::Parse { path: path.clone(), format: "CSV", message: polars_message(&e) })?
            }
            "parquet" | "pq" => {
                let f = std::fs::File::open(&path).map_err(|e| DataError::Io { path: path.clone(), source: e })?;
                let df = ParquetReader::new(f).finish().map_err(|e| DataError::Parse {
                    path: path.clone(),
                    format: "Parquet",
                    message: polars_message(&e),
                })?;
                let names = df.get_column_names();
                for (j, n) in names.iter().enumerate() {
                    if let Some(i) = names[..j].iter().position(|m| m == n) {
                        return Err(DataError::DuplicateColumn {
                            path,
                            column: n.to_string(),
                            first: i + 1,
                            second: j + 1,
                        });
                    }
                }
                df
            }
            _ => return Err(DataError::UnsupportedFormat { path, ext }),
        };
        if df.height() == 0 {
            return Err(DataError::Empty { path });
        }
        Ok(Self { path, df })
    }

    /// The file this table came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of data rows.
    pub fn n_rows(&self) -> usize {
        self.df.height()
    }

    /// Column names in file order.
    pub fn columns(&self) -> Vec<String> {
        self.df.get_column_names().iter().map(|s| s.to_string()).collect()
    }

    /// Whether a column exists.
    pub fn has_column(&self, name: &str) -> bool {
        self.df.column(name).is_ok()
    }

    /// The polars frame, for callers that need more than plain columns.
    pub fn frame(&self) -> &DataFrame {
        &self.df
    }

    fn column(&self, name: &str) -> Result<&Column, DataError> {
        self.df.column(name).map_err(|_| {
            let names = self.columns();
            let mut hint = closest(name, &names).map(|c| format!(" (did you mean {c:?}?)")).unwrap_or_default();
            // one column whose name holds the real header: another separator than the comma
            if let [only] = names.as_slice()
                && let Some(sep) = [';', '\t', '|'].into_iter().find(|c| only.contains(*c))
            {
                hint = format!(
                    " (the file seems to separate fields with {sep:?}, so the whole header reads as one column; \
                     save it comma-separated)"
                );
            }
            DataError::MissingColumn {
                path: self.path.clone(),
                column: name.to_string(),
                hint,
                available: names.join(", "),
            }
        })
    }

    fn bad_cell(&self, column: &str, row: usize, problem: String, remedy: &str) -> DataError {
        DataError::BadCell {
            path: self.path.clone(),
            column: column.to_string(),
            row: row + 1,
            problem,
            remedy: remedy.to_string(),
        }
    }

    /// A numeric column; every cell must hold a finite number. Text cells that parse as numbers are
    /// accepted; an empty, `NA`, `NaN` or infinite cell is an error naming its row.
    pub fn f64_column(&self, name: &str) -> Result<Vec<f64>, DataError> {
        let remedy = "Fill the cell with a finite number or drop the row before fitting";
        self.f64_column_opt(name)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Some(x) if x.is_finite() => Ok(x),
                Some(x) => Err(self.bad_cell(name, i, format!("value {x} is not finite"), remedy)),
                None => Err(self.bad_cell(name, i, "the cell is empty or not a number".into(), remedy)),
            })
            .collect()
    }

    /// A numeric column where empty cells are `None` (non-numeric text is still an error).
    pub fn f64_column_opt(&self, name: &str) -> Result<Vec<Option<f64>>, DataError> {
        let col = self.column(name)?;
        let remedy = "Use a plain number (no thousands separators or currency signs)";
        match col.dtype() {
            DataType::String => {
                let ca = col.str().map_err(|e| self.parse_err(e))?;
                ca.iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        None => Ok(None),
                        Some(s) => {
                            let t = s.trim();
                            if t.is_empty() || t.eq_ignore_ascii_case("na") || t.eq_ignore_ascii_case("null") {
                                Ok(None)
                            } else {
                                t.parse::<f64>()
                                    .map(Some)
                                    .map_err(|_| self.bad_cell(name, i, format!("{s:?} is not a number"), remedy))
                            }
                        }
                    })
                    .collect()
            }
            dt if dt.is_primitive_numeric() || matches!(dt, DataType::Boolean | DataType::Null) => {
                let c = col.cast(&DataType::Float64).map_err(|e| self.parse_err(e))?;
                let ca = c.f64().map_err(|e| self.parse_err(e))?;
                Ok(ca.iter().collect())
            }
            dt => Err(DataError::BadType {
                path: self.path.clone(),
                column: name.to_string(),
                dtype: dt.to_string(),
                wanted: "numbers",
            }),
        }
    }

    /// A column read as text (numbers are written in their shortest form, so a numeric geo id
    /// `13` becomes `"13"`). Empty cells are errors.
    pub fn str_column(&self, name: &str) -> Result<Vec<String>, DataError> {
        let col = self.column(name)?;
        let c = col.cast(&DataType::String).map_err(|e| self.parse_err(e))?;
        let ca = c.str().map_err(|e| self.parse_err(e))?;
        ca.iter()
            .enumerate()
            .map(|(i, v)| match v {
                Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                _ => Err(self.bad_cell(name, i, "the cell is empty".into(), "Every row needs a value here")),
            })
            .collect()
    }

    /// A time column: ISO dates (text or a date type) become days since 1970-01-01; numbers (years,
    /// fractional years, period indices) are used as they are.
    pub fn time_column(&self, name: &str) -> Result<TimeColumn, DataError> {
        let col = self.column(name)?;
        match col.dtype() {
            DataType::Date | DataType::Datetime(_, _) => {
                let c =
                    col.cast(&DataType::Date).and_then(|c| c.cast(&DataType::Int32)).map_err(|e| self.parse_err(e))?;
                let ca = c.i32().map_err(|e| self.parse_err(e))?;
                let values = ca
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.map(f64::from)
                            .ok_or_else(|| self.bad_cell(name, i, "the date is empty".into(), "Every row needs a date"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let labels = values.iter().map(|&v| format_date(v)).collect();
                Ok(TimeColumn { kind: TimeKind::Date, values, labels })
            }
            DataType::String => {
                let labels = self.str_column(name)?;
                if labels.iter().all(|s| s.parse::<f64>().is_ok()) {
                    let values = labels.iter().map(|s| s.parse::<f64>().expect("checked")).collect();
                    return Ok(TimeColumn { kind: TimeKind::Numeric, values, labels });
                }
                let values = labels
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        parse_date(s).ok_or_else(|| {
                            self.bad_cell(
                                name,
                                i,
                                format!("{s:?} is not a date"),
                                "Write dates as YYYY-MM-DD, or use a numeric time column",
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(TimeColumn { kind: TimeKind::Date, values, labels })
            }
            _ => {
                let values = self.f64_column(name)?;
                let labels = values
                    .iter()
                    .map(|v| if v.fract() == 0.0 { format!("{}", *v as i64) } else { v.to_string() })
                    .collect();
                Ok(TimeColumn { kind: TimeKind::Numeric, values, labels })
            }
        }
    }

    fn parse_err(&self, e: PolarsError) -> DataError {
        DataError::Parse { path: self.path.clone(), format: "table", message: polars_message(&e) }
    }
}

/// Checks a CSV's structure before polars reads it, so the errors name the file, line and row
/// instead of a reader setting: every record must have as many fields as the header, and the header
/// must not name a column twice. Quoted fields (RFC 4180: `"a, b"`, `""` for a quote, line breaks
/// inside quotes) count as one field; a blank line is not checked (the reader makes it a row of
/// empty cells, reported by the column readers) but counts as a row, so row numbers agree.
fn check_csv_shape(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
    let mut header: Option<Vec<String>> = None;
    let mut row = 0usize; // data rows seen (1-based once incremented)
    let mut line = 1usize; // physical line of the current position
    let mut start_line = 1usize;
    let mut fields: Vec<Vec<u8>> = vec![Vec::new()];
    let mut in_quotes = false;
    let mut blank = true;
    let mut i = 0;
    let mut finish = |fields: &mut Vec<Vec<u8>>, blank: bool, start_line: usize| -> Result<(), DataError> {
        if blank {
            // polars reads a blank line between records as a row of empty cells, which the typed
            // column readers then report by row: count it so the row numbers agree
            if header.is_some() {
                row += 1;
            }
            fields.clear();
            fields.push(Vec::new());
            return Ok(());
        }
        match &header {
            None => {
                let names: Vec<String> =
                    fields.iter().map(|f| String::from_utf8_lossy(f).trim_end_matches('\r').to_string()).collect();
                for (j, n) in names.iter().enumerate() {
                    if let Some(k) = names[..j].iter().position(|m| m == n) {
                        return Err(DataError::DuplicateColumn {
                            path: path.to_path_buf(),
                            column: n.clone(),
                            first: k + 1,
                            second: j + 1,
                        });
                    }
                }
                header = Some(names);
            }
            Some(h) => {
                row += 1;
                if fields.len() != h.len() {
                    return Err(DataError::RaggedRow {
                        path: path.to_path_buf(),
                        line: start_line,
                        row,
                        found: fields.len(),
                        expected: h.len(),
                    });
                }
            }
        }
        fields.clear();
        fields.push(Vec::new());
        Ok(())
    };
    let mut quote_line = 0usize;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            match b {
                b'"' if bytes.get(i + 1) == Some(&b'"') => {
                    i += 1;
                    if let Some(f) = fields.last_mut() {
                        f.push(b'"');
                    }
                }
                b'"' => in_quotes = false,
                _ => {
                    if b == b'\n' {
                        line += 1;
                    }
                    if let Some(f) = fields.last_mut() {
                        f.push(b);
                    }
                }
            }
        } else {
            match b {
                b'"' => {
                    in_quotes = true;
                    quote_line = line;
                    blank = false;
                }
                b',' => {
                    fields.push(Vec::new());
                    blank = false;
                }
                b'\n' => {
                    finish(&mut fields, blank, start_line)?;
                    line += 1;
                    start_line = line;
                    blank = true;
                }
                b'\r' => {}
                _ => {
                    if let Some(f) = fields.last_mut() {
                        f.push(b);
                    }
                    blank = false;
                }
            }
        }
        i += 1;
    }
    if in_quotes {
        let data_row = if header.is_some() { row + 1 } else { 0 };
        return Err(DataError::UnclosedQuote { path: path.to_path_buf(), line: quote_line, row: data_row });
    }
    finish(&mut fields, blank, start_line)
}

/// A polars error as a sentence for the user: polars' own advice names reader settings that a
/// user of mmloop cannot set (`truncate_ragged_lines`, `infer_schema_length`, ...), so anything
/// from "Consider"/"You might want to" on is dropped.
fn polars_message(e: &PolarsError) -> String {
    let text = e.to_string();
    let mut keep = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("Consider") || l.starts_with("You might want") || l.starts_with("Hint") {
            break;
        }
        if !l.is_empty() {
            keep.push(l);
        }
    }
    let mut msg = keep.join(" ");
    if msg.is_empty() {
        msg = text;
    }
    // polars quotes whole stretches of the file in some messages: keep the start
    if let Some((cut, _)) = msg.char_indices().nth(MAX_MESSAGE) {
        msg.truncate(cut);
        msg.push_str(" …");
    }
    msg
}

/// The most characters of a reader's message passed on.
const MAX_MESSAGE: usize = 300;

/// The candidate closest to `name` by edit distance (case-insensitive), if it is close enough to be a
/// plausible misspelling.
pub fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .iter()
        .map(|c| (levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn csv(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::File::create(&p).unwrap().write_all(text.as_bytes()).unwrap();
        (dir, p)
    }

    #[test]
    fn reads_numbers_dates_and_text() {
        let (_d, p) = csv("date,geo,y\n2021-01-01,a,1.5\n2021-01-02,b,2\n");
        let t = Table::read(&p).unwrap();
        assert_eq!(t.f64_column("y").unwrap(), vec![1.5, 2.0]);
        assert_eq!(t.str_column("geo").unwrap(), vec!["a", "b"]);
        let tc = t.time_column("date").unwrap();
        assert_eq!(tc.kind, TimeKind::Date);
        assert_eq!(tc.values[1] - tc.values[0], 1.0);
        assert_eq!(tc.format(tc.values[0]), "2021-01-01");
        assert_eq!(tc.parse_point("2021-01-02").unwrap(), tc.values[1]);
    }

    #[test]
    fn numeric_time_stays_numeric() {
        let (_d, p) = csv("year,y\n1989,1\n1990.25,2\n");
        let tc = Table::read(&p).unwrap().time_column("year").unwrap();
        assert_eq!(tc.kind, TimeKind::Numeric);
        assert_eq!(tc.values, vec![1989.0, 1990.25]);
    }

    #[test]
    fn missing_column_suggests_the_closest_name() {
        let (_d, p) = csv("date,sales\n2021-01-01,1\n");
        let e = Table::read(&p).unwrap().f64_column("sale").unwrap_err().to_string();
        assert!(e.contains("no column named \"sale\"") && e.contains("did you mean \"sales\""), "{e}");
        assert!(e.contains("t.csv"), "{e}");
    }

    #[test]
    fn bad_cells_name_their_row() {
        let (_d, p) = csv("y\n1\n2\nabc\n");
        let e = Table::read(&p).unwrap().f64_column("y").unwrap_err().to_string();
        assert!(e.contains("row 3") && e.contains("\"abc\""), "{e}");
        let (_d, p) = csv("y,z\n1,1\n,2\n");
        let e = Table::read(&p).unwrap().f64_column("y").unwrap_err().to_string();
        assert!(e.contains("row 2") && e.contains("empty"), "{e}");
        let (_d, p) = csv("y\n1\nNaN\n");
        let e = Table::read(&p).unwrap().f64_column("y").unwrap_err().to_string();
        assert!(e.contains("row 2"), "{e}");
    }

    #[test]
    fn unsupported_and_missing_files_are_errors() {
        assert!(matches!(Table::read("/nonexistent/x.csv"), Err(DataError::Io { .. })));
        let (_d, p) = csv("a\n1\n");
        let q = p.with_extension("xlsx");
        std::fs::copy(&p, &q).unwrap();
        assert!(matches!(Table::read(&q), Err(DataError::UnsupportedFormat { .. })));
    }

    #[test]
    fn ragged_row_names_file_line_and_row_without_reader_settings() {
        let (_d, p) = csv("a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n");
        let e = Table::read(&p).unwrap_err();
        assert!(matches!(e, DataError::RaggedRow { line: 3, row: 2, found: 4, expected: 3, .. }), "{e:?}");
        let m = e.to_string();
        assert!(m.contains("t.csv") && m.contains("line 3") && m.contains("data row 2"), "{m}");
        assert!(!m.contains("truncate_ragged_lines") && !m.contains("Consider"), "{m}");
        // a short row is as wrong as a long one (polars would fill it with nulls quietly)
        let (_d, p) = csv("a,b,c\n1,2,3\n4,5\n");
        assert!(matches!(Table::read(&p), Err(DataError::RaggedRow { row: 2, found: 2, .. })));
    }

    #[test]
    fn quoted_commas_and_line_breaks_are_one_field_and_blank_lines_are_empty_rows() {
        let (_d, p) = csv("name,y\n\"Smith, J\",1\n\"two\nlines \"\"q\"\"\",2\n\"x\",3\r\n");
        let t = Table::read(&p).unwrap();
        assert_eq!(t.f64_column("y").unwrap(), vec![1.0, 2.0, 3.0]);
        assert_eq!(t.str_column("name").unwrap()[0], "Smith, J");
        // a blank line is a row of empty cells, numbered as such, and a later ragged row counts it
        let (_d, p) = csv("name,y\na,1\n\nb,2\n");
        let e = Table::read(&p).unwrap().f64_column("y").unwrap_err().to_string();
        assert!(e.contains("row 2") && e.contains("empty"), "{e}");
        let (_d, p) = csv("name,y\na,1\n\nb,2,3\n");
        assert!(matches!(Table::read(&p), Err(DataError::RaggedRow { line: 4, row: 3, .. })));
        // the line of a ragged record after a quoted line break is its physical line
        let (_d, p) = csv("name,y\n\"a\nb\",1\n1,2,3\n");
        assert!(matches!(Table::read(&p), Err(DataError::RaggedRow { line: 4, row: 2, .. })));
    }

    #[test]
    fn an_unclosed_quote_names_its_line_instead_of_quoting_the_file() {
        let (_d, p) = csv("a,b\n1,2\n3,\"x\n4,5\n6,7\n");
        let e = Table::read(&p).unwrap_err();
        assert!(matches!(e, DataError::UnclosedQuote { line: 3, row: 2, .. }), "{e:?}");
        assert!(e.to_string().len() < 300, "{e}");
    }

    #[test]
    fn duplicate_header_names_are_refused_naming_the_column() {
        // quoted names are compared unquoted
        let (_d, p) = csv("\"date\",\"sales\",\"tv\"\n2021-01-01,1,2\n");
        assert!(Table::read(&p).is_ok());
        let (_d, p) = csv("date,sales,tv,\"sales\"\n2021-01-01,1,2,3\n");
        let e = Table::read(&p).unwrap_err();
        assert!(
            matches!(&e, DataError::DuplicateColumn { column, first: 2, second: 4, .. } if column == "sales"),
            "{e:?}"
        );
        assert!(e.to_string().contains("\"sales\" twice"), "{e}");
    }

    #[test]
    fn a_semicolon_separated_file_is_recognised_in_the_missing_column_message() {
        let (_d, p) = csv("date;sales\n2021-01-01;1\n");
        let e = Table::read(&p).unwrap().f64_column("sales").unwrap_err().to_string();
        assert!(e.contains("separate fields with ';'") && e.contains("comma-separated"), "{e}");
    }

    #[test]
    fn a_directory_is_not_a_data_file() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("data.csv");
        std::fs::create_dir(&sub).unwrap();
        let e = Table::read(&sub).unwrap_err();
        assert!(matches!(e, DataError::IsDirectory { .. }), "{e:?}");
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[test]
    fn header_only_file_is_empty_error() {
        let (_d, p) = csv("a,b\n");
        assert!(matches!(Table::read(&p), Err(DataError::Empty { .. })));
    }
}

use std::path::PathBuf;

/// Everything that can go wrong while reading a table or writing outputs. Every variant names the
/// file and, where it applies, the column and 1-based data row (the header is not counted), and says
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: cannot read the file: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: unsupported file type {ext:?}; use a .csv or .parquet file")]
    UnsupportedFormat { path: PathBuf, ext: String },

    #[error("{path}: cannot parse as {format}: {message}")]
    Parse { path: PathBuf, format: &'static str, message: String },

    #[error("{path}: the file has no data rows")]
    Empty { path: PathBuf },

    #[error("{path}: is a directory, not a data file; give the path of a .csv or .parquet file")]
    IsDirectory { path: PathBuf },

    #[error(
        "{path}: line {line} (data row {row}) has {found} fields but the header has {expected}. \
         Make every row have one field per column (quote fields that contain commas)"
    )]
    RaggedRow { path: PathBuf, line: usize, row: usize, found: usize, expected: usize },

    #[error(
        "{path}: line {line} (data row {row}) opens a quoted field that is never closed. Close the quote \
         (a quote inside a quoted field is written twice: \"\")"
    )]
    UnclosedQuote { path: PathBuf, line: usize, row: usize },

    #[error(
        "{path}: the header names column {column:?} twice (columns {first} and {second}). \
         Give every column its own name"
    )]
    DuplicateColumn { path: PathBuf, column: String, first: usize, second: usize },

    #[error("{path}: no column named {column:?}{hint}; the columns are: {available}")]
    MissingColumn { path: PathBuf, column: String, hint: String, available: String },

    #[error("{path}: column {column:?}, row {row}: {problem}. {remedy}")]
    BadCell { path: PathBuf, column: String, row: usize, problem: String, remedy: String },

    #[error("{path}: column {column:?} has type {dtype}, which cannot be read as {wanted}")]
    BadType { path: PathBuf, column: String, dtype: String, wanted: &'static str },

    #[error("{path}: cannot write output: {message}")]
    Write { path: PathBuf, message: String },

    #[error(
        "{path}: refusing to write the output there: {reason}. mmloop replaces an output directory as a whole, so \
         it writes only into a new directory, an empty one, or one it wrote itself before (marked by a \
         `.mmloop-output` file). Choose a new directory (for example {suggestion})"
    )]
    NotAnOutputDir { path: PathBuf, reason: String, suggestion: String },

    #[error(
        "{path}: refusing to write the output there: the output directory {relation} the input {input}, so \
         replacing it would delete or overwrite that input. Choose an output directory outside every input, \
         e.g. a new folder next to them"
    )]
    OutputOverlapsInput { path: PathBuf, input: PathBuf, relation: &'static str },

    #[error(
        "{path}: refusing to replace it: it holds the output of `mmloop {existing}`, not of `mmloop {command}`. \
         Choose another output directory, or remove this one yourself if you no longer need it"
    )]
    OutputOfAnotherCommand { path: PathBuf, existing: String, command: String },

    #[error("{path}: refusing to write there: {reason}. Choose another file name")]
    RefusedFile { path: PathBuf, reason: String },
}

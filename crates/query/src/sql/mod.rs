//! CloudTrail Lake's SQL on DataFusion, in the order a statement meets them: [`split`] cuts a
//! text into statements, [`text`] rewrites a statement's text before it is parsed (`$NAME`
//! placeholders, bare store ids, Trino type names), [`dialect`] is the parser's dialect, and
//! [`ast`] rewrites the parsed statement (Trino syntax DataFusion does not plan).

pub(crate) mod ast;
pub(crate) mod dialect;
pub mod split;
pub(crate) mod text;

pub use text::placeholders;

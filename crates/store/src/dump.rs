//! A store's tables as plain rows, for copying a whole store from one backend to another
//! (`warmstart migrate`). Ids are kept, so everything that refers to them (embeddings,
//! removed products, trained artifacts' item order) stays valid.

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes (an embedding vector is its little-endian encoding in the row's dtype).
    Blob(Vec<u8>),
}

/// One row, cells in [`Table::columns`] order.
pub type Row = Vec<Value>;

/// Type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Integer, never NULL.
    Int,
    /// Integer or NULL.
    OptInt,
    /// Float or NULL.
    OptReal,
    /// Text, never NULL.
    Text,
    /// Text or NULL.
    OptText,
    /// Bytes.
    Blob,
    /// An embedding vector (bytes here; a pgvector `vector` in PostgreSQL).
    Vector,
}

/// The tables a store copy carries, in an order that satisfies their references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Sites.
    Sites,
    /// Products.
    Products,
    /// Users.
    Users,
    /// Interactions.
    Interactions,
    /// Import log.
    Imports,
    /// Content vectors.
    Embeddings,
    /// Products off the served catalog.
    RemovedProducts,
    /// Store-wide secrets (the session-hash key: without it, erasure by session id breaks).
    Secrets,
    /// Served lists.
    Recommendations,
    /// Idempotency keys of event batches.
    EventKeys,
    /// Feedback events.
    Events,
}

impl Table {
    /// A row to load must have one cell per column.
    pub(crate) fn check_row(self, row: &Row, columns: usize) -> crate::Result<()> {
        if row.len() == columns {
            Ok(())
        } else {
            Err(crate::Error::Copy(format!("{}: a row of {} cells, expected {columns}", self.name(), row.len())))
        }
    }

    /// Every table, in copy order.
    pub const ALL: [Table; 11] = [
        Table::Sites,
        Table::Products,
        Table::Users,
        Table::Interactions,
        Table::Imports,
        Table::Embeddings,
        Table::RemovedProducts,
        Table::Secrets,
        Table::Recommendations,
        Table::EventKeys,
        Table::Events,
    ];

    /// SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Sites => "sites",
            Table::Products => "products",
            Table::Users => "users",
            Table::Interactions => "interactions",
            Table::Imports => "imports",
            Table::Embeddings => "embeddings",
            Table::RemovedProducts => "removed_products",
            Table::Secrets => "secrets",
            Table::Recommendations => "recommendations",
            Table::EventKeys => "event_keys",
            Table::Events => "events",
        }
    }

    /// Columns and their types, in row order.
    pub fn columns(self) -> &'static [(&'static str, Column)] {
        use Column::*;
        match self {
            Table::Sites => &[("id", Int), ("key", Text), ("name", Text), ("dataset", Text)],
            Table::Products => &[
                ("id", Int),
                ("site_id", Int),
                ("external_id", Text),
                ("title", Text),
                ("description", OptText),
                ("brand", OptText),
                ("category", OptText),
                ("price", OptReal),
                ("currency", OptText),
                ("price_usd", OptReal),
                ("image", OptText),
                ("attributes", Text),
                ("missing", Int),
                ("content_hash", Text),
                ("version", Int),
            ],
            Table::Users => &[("id", Int), ("key", Text)],
            Table::Interactions => &[
                ("id", Int),
                ("user_id", Int),
                ("product_id", Int),
                ("kind", Int),
                ("value", OptReal),
                ("text", OptText),
                ("time_kind", Int),
                ("time", Int),
                ("split", Int),
            ],
            Table::Imports => &[("id", Int), ("source", Text), ("at", Int), ("summary", Text), ("report", Text)],
            Table::Embeddings => &[
                ("product_id", Int),
                ("model", Text),
                ("content_hash", Text),
                ("dim", Int),
                ("dtype", Text),
                ("vector", Vector),
            ],
            Table::RemovedProducts => &[("product_id", Int), ("at", Int)],
            Table::Secrets => &[("name", Text), ("value", Blob)],
            Table::Recommendations => &[
                ("id", Text),
                ("session", OptText),
                ("site", Text),
                ("model", Text),
                ("experiment", OptText),
                ("variant", OptText),
                ("items", Text),
                ("at", Int),
            ],
            Table::EventKeys => &[("key", Text), ("session", Text), ("at", Int)],
            Table::Events => &[
                ("id", Int),
                ("key", Text),
                ("session", Text),
                ("kind", Int),
                ("recommendation", OptText),
                ("experiment", OptText),
                ("variant", OptText),
                ("site", Text),
                ("product", Text),
                ("position", OptInt),
                ("at", Int),
            ],
        }
    }

    /// `ORDER BY` that makes a dump deterministic.
    pub fn order_by(self) -> &'static str {
        match self {
            Table::Embeddings => "product_id, model",
            Table::RemovedProducts => "product_id",
            Table::Secrets => "name",
            Table::Recommendations => "id",
            Table::EventKeys => "key",
            _ => "id",
        }
    }

    /// Whether the table has an integer id drawn from a sequence.
    pub fn has_serial_id(self) -> bool {
        matches!(self.columns().first(), Some(("id", Column::Int)))
    }

    /// `SELECT` list of every column.
    pub fn column_list(self) -> String {
        self.columns().iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    }
}

/// Rows per chunk when streaming a table.
pub const CHUNK: usize = 20_000;

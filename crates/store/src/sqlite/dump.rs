//! Whole tables in and out of SQLite, for copies between stores.

use super::SqliteStore;
use crate::dump::{Column, Row, Table, Value, CHUNK};
use crate::{Error, Result};

fn sql_value(r: &rusqlite::Row<'_>, i: usize, col: Column) -> rusqlite::Result<Value> {
    use rusqlite::types::ValueRef;
    Ok(match (r.get_ref(i)?, col) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(v), Column::OptReal) => Value::Real(v as f64),
        (ValueRef::Integer(v), _) => Value::Int(v),
        (ValueRef::Real(v), _) => Value::Real(v),
        (ValueRef::Text(t), _) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        (ValueRef::Blob(b), _) => Value::Blob(b.to_vec()),
    })
}

fn to_sql(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Int(i) => V::Integer(*i),
        Value::Real(f) => V::Real(*f),
        Value::Text(t) => V::Text(t.clone()),
        Value::Blob(b) => V::Blob(b.clone()),
    }
}

pub(super) fn dump_table(s: &SqliteStore, table: Table, sink: &mut dyn FnMut(Vec<Row>) -> Result<()>) -> Result<()> {
    let cols = table.columns();
    let sql = format!("SELECT {} FROM {} ORDER BY {}", table.column_list(), table.name(), table.order_by());
    let mut st = s.conn.prepare(&sql).map_err(|e| s.err(e))?;
    let mut rows = st.query([]).map_err(|e| s.err(e))?;
    let mut chunk = Vec::with_capacity(CHUNK);
    while let Some(r) = rows.next().map_err(|e| s.err(e))? {
        let row = cols
            .iter()
            .enumerate()
            .map(|(i, (_, c))| sql_value(r, i, *c))
            .collect::<rusqlite::Result<Row>>()
            .map_err(|e| s.err(e))?;
        chunk.push(row);
        if chunk.len() == CHUNK {
            sink(std::mem::take(&mut chunk))?;
        }
    }
    if !chunk.is_empty() {
        sink(chunk)?;
    }
    Ok(())
}

pub(super) fn load_rows(s: &mut SqliteStore, table: Table, rows: &[Row]) -> Result<()> {
    let path = s.path.clone();
    let err = |e| Error::Sqlite { path: path.clone(), source: e };
    let cols = table.columns();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let verb = if table == Table::Secrets { "INSERT OR REPLACE" } else { "INSERT" };
    let sql = format!("{verb} INTO {}({}) VALUES ({})", table.name(), table.column_list(), marks.join(", "));
    let tx = super::begin_write(&mut s.conn).map_err(err)?;
    {
        let mut st = tx.prepare_cached(&sql).map_err(err)?;
        for row in rows {
            table.check_row(row, cols.len())?;
            let values: Vec<rusqlite::types::Value> = row.iter().map(to_sql).collect();
            st.execute(rusqlite::params_from_iter(values)).map_err(err)?;
        }
    }
    tx.commit().map_err(err)
}

pub(super) fn finish_load(s: &mut SqliteStore) -> Result<()> {
    s.conn
        .execute(
            "UPDATE settings SET value = (SELECT coalesce(max(version), 0) FROM products) WHERE name = 'catalog_version'",
            [],
        )
        .map_err(|e| s.err(e))?;
    Ok(())
}

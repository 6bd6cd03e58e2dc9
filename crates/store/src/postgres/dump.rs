//! Whole tables in and out of PostgreSQL, for copies between stores: rows streamed through a
//! portal in chunks, loaded back through binary `COPY` with their ids.

use postgres::types::{ToSql, Type};

use super::PgStore;
use crate::dump::{Column, Row, Table, Value, CHUNK};
use crate::embeddings::{decode, encode};
use crate::{Error, Result};

fn cell(r: &postgres::Row, i: usize, col: Column, dtype: Option<&str>) -> Result<Value, postgres::Error> {
    Ok(match col {
        Column::Int => Value::Int(r.try_get(i)?),
        Column::OptInt => r.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Int),
        Column::OptReal => r.try_get::<_, Option<f64>>(i)?.map_or(Value::Null, Value::Real),
        Column::Text => Value::Text(r.try_get(i)?),
        Column::OptText => r.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text),
        Column::Blob => Value::Blob(r.try_get(i)?),
        Column::Vector => {
            let v: pgvector::Vector = r.try_get(i)?;
            let dtype = dtype.and_then(|d| d.parse().ok()).unwrap_or_default();
            Value::Blob(encode(v.as_slice(), dtype))
        }
    })
}

fn sql_param(v: &Value, col: Column, dtype: Option<&str>, table: Table) -> Result<Box<dyn ToSql + Sync>> {
    let bad = || Error::Copy(format!("{}: a {v:?} where a {col:?} belongs", table.name()));
    Ok(match (col, v) {
        (Column::Int, Value::Int(i)) => Box::new(*i),
        (Column::OptInt, Value::Int(i)) => Box::new(Some(*i)),
        (Column::OptInt, Value::Null) => Box::new(None::<i64>),
        (Column::OptReal, Value::Real(f)) => Box::new(Some(*f)),
        (Column::OptReal, Value::Int(i)) => Box::new(Some(*i as f64)),
        (Column::OptReal, Value::Null) => Box::new(None::<f64>),
        (Column::Text, Value::Text(t)) => Box::new(t.clone()),
        (Column::OptText, Value::Text(t)) => Box::new(Some(t.clone())),
        (Column::OptText, Value::Null) => Box::new(None::<String>),
        (Column::Blob, Value::Blob(b)) => Box::new(b.clone()),
        (Column::Vector, Value::Blob(b)) => {
            let dtype = dtype.unwrap_or("f32");
            let width = if dtype == "f16" { 2 } else { 4 };
            let mut out = Vec::with_capacity(b.len() / width);
            if !decode(b, b.len() / width, dtype, &mut out) {
                return Err(bad());
            }
            Box::new(pgvector::Vector::from(out))
        }
        _ => return Err(bad()),
    })
}

fn pg_type(col: Column, vector: &Type) -> Type {
    match col {
        Column::Int | Column::OptInt => Type::INT8,
        Column::OptReal => Type::FLOAT8,
        Column::Text | Column::OptText => Type::TEXT,
        Column::Blob => Type::BYTEA,
        Column::Vector => vector.clone(),
    }
}

fn vector_type(s: &PgStore) -> Result<Type> {
    let st = s.conn().prepare("SELECT $1::vector").map_err(|e| s.err(e))?;
    Ok(st.params()[0].clone())
}

pub(super) fn dump_table(s: &PgStore, table: Table, sink: &mut dyn FnMut(Vec<Row>) -> Result<()>) -> Result<()> {
    let cols = table.columns();
    let dtype_at = cols.iter().position(|(n, _)| *n == "dtype");
    let order: Vec<String> = table
        .order_by()
        .split(", ")
        .map(|c| match cols.iter().find(|(n, _)| n == &c) {
            Some((_, Column::Text)) => format!("{c} COLLATE \"C\""),
            _ => c.to_string(),
        })
        .collect();
    let sql = format!("SELECT {} FROM {} ORDER BY {}", table.column_list(), table.name(), order.join(", "));
    let mut c = s.conn();
    let e = |x| Error::Postgres { location: s.location.clone(), source: x };
    let mut tx = c.transaction().map_err(e)?;
    let portal = tx.bind(sql.as_str(), &[]).map_err(e)?;
    loop {
        let rows = tx.query_portal(&portal, CHUNK as i32).map_err(e)?;
        if rows.is_empty() {
            break;
        }
        let mut chunk = Vec::with_capacity(rows.len());
        for r in &rows {
            let dtype: Option<String> = dtype_at.map(|i| r.get(i));
            let row = cols
                .iter()
                .enumerate()
                .map(|(i, (_, col))| cell(r, i, *col, dtype.as_deref()))
                .collect::<Result<Row, postgres::Error>>()
                .map_err(e)?;
            chunk.push(row);
        }
        sink(chunk)?;
    }
    tx.commit().map_err(e)
}

pub(super) fn load_rows(s: &mut PgStore, table: Table, rows: &[Row]) -> Result<()> {
    let cols = table.columns();
    let vector = vector_type(s)?;
    let types: Vec<Type> = cols.iter().map(|(_, c)| pg_type(*c, &vector)).collect();
    let dtype_at = cols.iter().position(|(n, _)| *n == "dtype");
    let location = s.location.clone();
    let err = |e| Error::Postgres { location: location.clone(), source: e };
    let mut tx = s.conn_mut().transaction().map_err(err)?;
    let sink = tx
        .copy_in(&format!("COPY {}({}) FROM STDIN (FORMAT binary)", table.name(), table.column_list()))
        .map_err(err)?;
    let mut writer = postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
    for row in rows {
        table.check_row(row, cols.len())?;
        let dtype = dtype_at.and_then(|i| match &row[i] {
            Value::Text(t) => Some(t.as_str()),
            _ => None,
        });
        let params =
            row.iter().zip(cols).map(|(v, (_, c))| sql_param(v, *c, dtype, table)).collect::<Result<Vec<_>>>()?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref()).collect();
        writer.write(&refs).map_err(err)?;
    }
    writer.finish().map_err(err)?;
    tx.commit().map_err(err)
}

pub(super) fn finish_load(s: &mut PgStore) -> Result<()> {
    let location = s.location.clone();
    let err = |e| Error::Postgres { location: location.clone(), source: e };
    let c = s.conn_mut();
    for t in Table::ALL.iter().filter(|t| t.has_serial_id()) {
        let name = t.name();
        c.batch_execute(&format!(
            "SELECT setval(pg_get_serial_sequence('{name}', 'id'), coalesce((SELECT max(id) FROM {name}), 0) + 1, false)"
        ))
        .map_err(err)?;
    }
    c.batch_execute(
        "UPDATE settings SET value = (SELECT coalesce(max(version), 0) FROM products)::text WHERE name = 'catalog_version'",
    )
    .map_err(err)?;
    Ok(())
}

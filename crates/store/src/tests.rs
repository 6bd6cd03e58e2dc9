use super::*;

#[test]
fn rejects_files_that_are_not_stores() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.sqlite");
    std::fs::write(&path, b"this is not a database at all, just some text that is long enough").unwrap();
    let err = Store::open(&path).err().expect("junk must not open");
    assert!(err.to_string().contains("junk.sqlite"), "{err}");
}

#[test]
fn passwords_never_show_in_locations() {
    assert_eq!(redact_url("postgres://ws:s3cret@db:5432/shop"), "postgres://ws:***@db:5432/shop");
    assert_eq!(redact_url("postgres://ws@db/shop"), "postgres://ws@db/shop");
    assert!(is_postgres_url("postgresql://x") && !is_postgres_url("/tmp/postgres://x"));
}

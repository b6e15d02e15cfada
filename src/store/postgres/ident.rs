//! SQL identifiers: the one place that checks and quotes the names (schemas, legacy tables,
//! columns, derived index names) the crate pastes into SQL. Values are never pasted: they
//! are bound as parameters.

/// The longest identifier Postgres keeps (`NAMEDATALEN - 1` bytes); a longer one is
/// silently truncated by the server, so two different long names could name one object.
pub const MAX_IDENT_LEN: usize = 63;

/// `name` double-quoted for SQL, embedded `"` doubled: the identifier is exactly `name`
/// whatever it holds (quotes, backslashes, `;`, spaces), and backslashes mean nothing in a
/// quoted identifier whatever `standard_conforming_strings` is. Callers check names with
/// [`check_ident`] first; quoting is the second line of defence, not the first.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Why `name` is not a plain identifier the crate accepts (`[A-Za-z_][A-Za-z0-9_]*`, at most
/// [`MAX_IDENT_LEN`] bytes), or `None` when it is one.
pub fn ident_problem(name: &str) -> Option<String> {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain {
        Some("not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)".to_owned())
    } else if name.len() > MAX_IDENT_LEN {
        Some(format!(
            "{} bytes long; Postgres truncates identifiers to {MAX_IDENT_LEN} bytes, so it would name another object",
            name.len()
        ))
    } else {
        None
    }
}

/// Why `schema` cannot hold a store, or `None`: it must be a plain lower-case identifier
/// (`[a-z_][a-z0-9_]*`, at most [`MAX_IDENT_LEN`] bytes) and not a system schema
/// (`information_schema`, `pg_*`, which Postgres reserves).
pub fn schema_problem(schema: &str) -> Option<String> {
    if let Some(p) = ident_problem(schema) {
        return Some(p);
    }
    if schema.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("not lower-case (unquoted names fold to lower case)".to_owned());
    }
    if schema == "information_schema" || schema.starts_with("pg_") {
        return Some("a system schema name (information_schema and pg_* are reserved)".to_owned());
    }
    None
}

/// `<base>_<suffix>`, or, when that exceeds [`MAX_IDENT_LEN`] bytes, `base` cut short and a
/// hash of the whole of `base` inserted (`<base prefix>_<16 hex digits>_<suffix>`): the name
/// is never truncated by the server, and two bases that share a long prefix get different
/// names. Deterministic across versions (FNV-1a 64), so `CREATE … IF NOT EXISTS` finds the
/// object created by an earlier run. `base` and `suffix` are plain ASCII identifiers.
#[cfg_attr(not(feature = "migration"), allow(dead_code))]
pub fn derived_name(base: &str, suffix: &str) -> String {
    let full = format!("{base}_{suffix}");
    if full.len() <= MAX_IDENT_LEN {
        return full;
    }
    let hash = base.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let tail = format!("_{hash:016x}_{suffix}");
    let keep = MAX_IDENT_LEN.saturating_sub(tail.len());
    // ASCII only (checked identifiers), so any byte index is a char boundary.
    let prefix = base.get(..keep.min(base.len())).unwrap_or_default();
    format!("{prefix}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_hostile_names() {
        assert_eq!(quote_ident("plain"), "\"plain\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            quote_ident("x\"; DROP TABLE t; --"),
            "\"x\"\"; DROP TABLE t; --\""
        );
        assert_eq!(quote_ident("back\\slash\\\""), "\"back\\slash\\\"\"\"");
        assert_eq!(quote_ident(""), "\"\"");
        // Every quote inside is doubled: the only lone quotes are the outer two.
        let q = quote_ident("\"\"\"");
        assert_eq!(q, "\"\"\"\"\"\"\"\"");
    }

    #[test]
    fn identifiers_are_checked() {
        assert!(ident_problem("block_number").is_none());
        assert!(ident_problem("_x9").is_none());
        for bad in ["", "9a", "a-b", "a b", "a\"b", "a;b", "é", "a\\b"] {
            assert!(ident_problem(bad).is_some(), "{bad:?} accepted");
        }
        assert!(ident_problem(&"a".repeat(63)).is_none());
        assert!(ident_problem(&"a".repeat(64)).unwrap().contains("64 bytes"));
    }

    #[test]
    fn schemas_refuse_reserved_and_long_names() {
        assert!(schema_problem("tenant_a").is_none());
        assert!(schema_problem("public").is_none());
        assert!(schema_problem("information_schema").is_some());
        assert!(schema_problem("pg_catalog").is_some());
        assert!(schema_problem("pg_temp_3").is_some());
        assert!(schema_problem("Tenant").is_some());
        assert!(schema_problem(&format!("tenant_{}", "x".repeat(56))).is_none());
        assert!(schema_problem(&format!("tenant_{}", "x".repeat(57))).is_some());
    }

    #[test]
    fn derived_names_never_exceed_the_limit_and_stay_distinct() {
        assert_eq!(
            derived_name("legacy", "migration_key"),
            "legacy_migration_key"
        );
        let a = format!("{}a", "t".repeat(62));
        let b = format!("{}b", "t".repeat(62));
        let (na, nb) = (
            derived_name(&a, "migration_key"),
            derived_name(&b, "migration_key"),
        );
        assert!(na.len() <= MAX_IDENT_LEN && nb.len() <= MAX_IDENT_LEN);
        assert_ne!(na, nb);
        assert_ne!(na, a, "the index name must not equal the table's own name");
        assert!(na.ends_with("_migration_key"));
        assert!(ident_problem(&na).is_none());
        // Deterministic: the same base gives the same name.
        assert_eq!(na, derived_name(&a, "migration_key"));
        // Exactly at the limit: kept as is.
        let edge = "e".repeat(MAX_IDENT_LEN - "_migration_key".len());
        assert_eq!(
            derived_name(&edge, "migration_key"),
            format!("{edge}_migration_key")
        );
    }
}

//! The version table's SQL, spelled as SQLAlchemy's SQLite compiler spells it (Alembic builds
//! these statements from a `Table` object; offline output prints them verbatim, so every space
//! matters).

/// `version_table` / `version_table_schema` as env.py's `context.configure` gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionTable {
    pub table: String,
    pub schema: Option<String>,
}

impl Default for VersionTable {
    fn default() -> Self {
        VersionTable {
            table: "alembic_version".into(),
            schema: None,
        }
    }
}

/// One quoting rule for every identifier we write (`ddl` owns it, checked against SQLAlchemy).
pub use crate::alembic_compat::ddl::sqlite::quote as quote_identifier;

impl VersionTable {
    /// `schema.table` as SQLAlchemy renders a table reference.
    pub fn qualified(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote_identifier(s), quote_identifier(&self.table)),
            None => quote_identifier(&self.table).into_owned(),
        }
    }

    /// `CREATE TABLE` as SQLAlchemy compiles it (tab indentation, trailing space after the
    /// column's comma); Alembic's offline output turns tabs into four spaces.
    pub fn create_sql(&self) -> String {
        format!(
            "CREATE TABLE {} (\n\tversion_num VARCHAR(32) NOT NULL, \n\tCONSTRAINT {} PRIMARY KEY (version_num)\n)",
            self.qualified(),
            quote_identifier(&format!("{}_pkc", self.table))
        )
    }

    /// The insert as the offline output shows it: SQLAlchemy 2.x adds `RETURNING` for the
    /// primary key on SQLite.
    pub fn insert_sql(&self, version: &str, returning: bool) -> String {
        format!(
            "INSERT INTO {} (version_num) VALUES ({}){}",
            self.qualified(),
            sql_string(version),
            if returning {
                " RETURNING version_num"
            } else {
                ""
            }
        )
    }

    /// Bound to (new, old). One text for every step, so SQLite prepares it once per run
    /// (a long upgrade sends one per revision); offline, the values are inlined.
    pub fn update_sql(&self) -> String {
        let t = self.qualified();
        format!("UPDATE {t} SET version_num=? WHERE {t}.version_num = ?")
    }

    /// Bound to the version, as [`update_sql`](Self::update_sql) is.
    pub fn delete_sql(&self) -> String {
        let t = self.qualified();
        format!("DELETE FROM {t} WHERE {t}.version_num = ?")
    }

    pub fn delete_all_sql(&self) -> String {
        format!("DELETE FROM {}", self.qualified())
    }

    pub fn select_sql(&self) -> String {
        format!(
            "SELECT {}.version_num FROM {}",
            self.qualified(),
            self.qualified()
        )
    }
}

/// Alembic writes versions with `literal_column("'%s'" % version)`: no escaping. Ids come from
/// revision files that passed `verify_rev_id`, but a stray quote must not break the statement,
/// so we double it (Alembic would emit broken SQL there).
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_quote_like_sqlalchemy() {
        assert_eq!(quote_identifier("alembic_version"), "alembic_version");
        assert_eq!(quote_identifier("My Version"), "\"My Version\"");
        assert_eq!(quote_identifier("order"), "\"order\"");
        assert_eq!(quote_identifier("Upper"), "\"Upper\"");
        assert_eq!(quote_identifier("1abc"), "\"1abc\"");
        assert_eq!(quote_identifier("a$b"), "a$b");
    }

    #[test]
    fn statements_match_sqlalchemy_text() {
        let vt = VersionTable {
            table: "My Version".into(),
            schema: Some("main".into()),
        };
        assert_eq!(
            vt.create_sql(),
            "CREATE TABLE main.\"My Version\" (\n\tversion_num VARCHAR(32) NOT NULL, \n\tCONSTRAINT \"My Version_pkc\" PRIMARY KEY (version_num)\n)"
        );
        assert_eq!(
            vt.update_sql(),
            "UPDATE main.\"My Version\" SET version_num=? WHERE main.\"My Version\".version_num = ?"
        );
        assert_eq!(
            vt.delete_sql(),
            "DELETE FROM main.\"My Version\" WHERE main.\"My Version\".version_num = ?"
        );
        assert_eq!(
            VersionTable::default().insert_sql("y", true),
            "INSERT INTO alembic_version (version_num) VALUES ('y') RETURNING version_num"
        );
    }
}

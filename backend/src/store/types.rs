//! The storage value vocabulary shared by every area (see ARCHITECTURE.md, "Storage
//! vocabulary"): times are Unix ms `BIGINT`, money integer minor units `BIGINT`, JSON is
//! `TEXT` decoded through [`Json`], enums are `TEXT` through [`text_enum!`](crate::text_enum).
//! Everything here decodes with sqlx's `Any` driver, so `#[derive(sqlx::FromRow)]` row
//! structs work on both engines, and a value that does not decode is an error naming
//! its column ([`sqlx::Error::ColumnDecode`]), never a silent `null`/default.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::any::{Any, AnyTypeInfo};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

/// JSON stored as `TEXT`. Decoding corrupt text fails with `ColumnDecode` naming the
/// column; encoding writes compact JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Type<Any> for Json<T> {
    fn type_info() -> AnyTypeInfo {
        <String as Type<Any>>::type_info()
    }
    fn compatible(ty: &AnyTypeInfo) -> bool {
        <String as Type<Any>>::compatible(ty)
    }
}

impl<'r, T: DeserializeOwned> Decode<'r, Any> for Json<T> {
    fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <String as Decode<'r, Any>>::decode(value)?;
        decode_json(&text).map(Json).map_err(Into::into)
    }
}

impl<'q, T: Serialize> Encode<'q, Any> for Json<T> {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        let text = serde_json::to_string(&self.0)?;
        <String as Encode<'q, Any>>::encode(text, buf)
    }
}

/// Why stored JSON did not decode. Names no content: rows may hold data a response or
/// log line must not show.
#[derive(Debug, thiserror::Error)]
#[error("stored JSON is invalid ({0})")]
pub struct CorruptJson(String);

/// Parse stored JSON text (for values read outside a `FromRow`, e.g. a scalar query).
pub fn decode_json<T: DeserializeOwned>(text: &str) -> Result<T, CorruptJson> {
    serde_json::from_str(text).map_err(|e| {
        // serde_json's message may quote the offending input; keep only where it is.
        CorruptJson(format!(
            "{} at line {} column {}",
            match e.classify() {
                serde_json::error::Category::Io => "i/o error",
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Data => "unexpected shape",
                serde_json::error::Category::Eof => "truncated",
            },
            e.line(),
            e.column()
        ))
    })
}

/// A `TEXT` value that is not one of an enum's names. The message quotes the value only
/// when it looks like a name (short, `[A-Za-z0-9_-]`): a corrupt column may hold anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {} (expected one of: {})", shown(.value), .allowed.join(", "))]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
    pub allowed: &'static [&'static str],
}

fn shown(value: &str) -> String {
    let name_like = value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if name_like {
        format!("{value:?}")
    } else {
        format!("(a value of {} bytes)", value.len())
    }
}

/// Add the table (and the row's key, if given) to a decode error, so the message says
/// exactly where the corrupt value is: `audit_log.detail (seq 7): stored JSON is invalid …`.
/// Other errors pass through unchanged.
pub fn in_table<'a>(
    table: &'static str,
    key: Option<&'a dyn fmt::Display>,
) -> impl Fn(sqlx::Error) -> sqlx::Error + 'a {
    move |e| match e {
        sqlx::Error::ColumnDecode { index, source } => {
            let column = index.trim_matches('"');
            sqlx::Error::ColumnDecode {
                index: match key {
                    Some(k) => format!("{table}.{column} ({k})"),
                    None => format!("{table}.{column}"),
                },
                source,
            }
        }
        other => other,
    }
}

/// Convert a decoded column with `TryFrom` (for types that must not depend on sqlx, e.g.
/// `model::Role`), failing as `ColumnDecode` naming `table.column (key)`. Preferred over
/// `#[sqlx(try_from = "String")]`, whose error in sqlx 0.8 loses the message
/// ("unprintable error").
pub fn convert<T, S>(
    table: &str,
    column: &str,
    key: &dyn fmt::Display,
    raw: S,
) -> Result<T, sqlx::Error>
where
    T: TryFrom<S>,
    T::Error: std::error::Error + Send + Sync + 'static,
{
    T::try_from(raw).map_err(|e| sqlx::Error::ColumnDecode {
        index: format!("{table}.{column} ({key})"),
        source: Box::new(e),
    })
}

/// Is this error a stored value that did not decode (corrupt row), as opposed to the
/// database failing?
pub fn is_corrupt_row(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_))
}

/// An enum stored as `TEXT`, one name per variant:
///
/// ```ignore
/// echopilot_backend::text_enum! {
///     /// How an action ended.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum Outcome { Ok = "ok", Failed = "failed" }
/// }
/// ```
///
/// gives `ALL`, `as_str`, `Display`, `== "name"`, `FromStr` / `TryFrom<String>` (error:
/// [`UnknownVariant`]), serde as the name, and sqlx `Type`/`Decode`/`Encode` for `Any`, so
/// the enum can be a `FromRow` field and a bind parameter. An unknown name in a row is a
/// `ColumnDecode` error naming the column. For types that must not depend on sqlx (the
/// `model` module), implement `TryFrom<String>`, decode the column as `String` and
/// convert with [`convert`].
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Comparisons with the stored names (`state == "dead"`) read naturally.
        impl ::std::cmp::PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::store::UnknownVariant;
            fn from_str(s: &str) -> ::std::result::Result<Self, $crate::store::UnknownVariant> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::store::UnknownVariant {
                        kind: stringify!($name),
                        value: other.to_string(),
                        allowed: $name::NAMES,
                    }),
                }
            }
        }

        impl ::std::convert::TryFrom<String> for $name {
            type Error = $crate::store::UnknownVariant;
            // Not `Self::Error`: a variant may be called `Error`.
            fn try_from(s: String) -> ::std::result::Result<Self, $crate::store::UnknownVariant> {
                s.parse()
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }

        impl ::sqlx::Type<::sqlx::Any> for $name {
            fn type_info() -> ::sqlx::any::AnyTypeInfo {
                <String as ::sqlx::Type<::sqlx::Any>>::type_info()
            }
            fn compatible(ty: &::sqlx::any::AnyTypeInfo) -> bool {
                <String as ::sqlx::Type<::sqlx::Any>>::compatible(ty)
            }
        }

        impl<'r> ::sqlx::Decode<'r, ::sqlx::Any> for $name {
            fn decode(
                value: <::sqlx::Any as ::sqlx::Database>::ValueRef<'r>,
            ) -> ::std::result::Result<Self, ::sqlx::error::BoxDynError> {
                let s = <String as ::sqlx::Decode<'r, ::sqlx::Any>>::decode(value)?;
                Ok(s.parse::<$name>()?)
            }
        }

        impl<'q> ::sqlx::Encode<'q, ::sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <::sqlx::Any as ::sqlx::Database>::ArgumentBuffer<'q>,
            ) -> ::std::result::Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <&str as ::sqlx::Encode<'q, ::sqlx::Any>>::encode(self.as_str(), buf)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    crate::text_enum! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        // `Error` as a variant must not clash with the trait's associated `Error` type.
        enum Colour { Red = "red", DarkBlue = "dark_blue", Error = "error" }
    }

    #[derive(Debug, sqlx::FromRow)]
    struct Row {
        colour: Colour,
        body: Json<serde_json::Value>,
        note: Option<Json<Vec<i64>>>,
    }

    #[test]
    fn text_enum_round_trips_and_names_unknown_values() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>().unwrap(), *c);
            let j = serde_json::to_string(c).unwrap();
            assert_eq!(j, format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<Colour>(&j).unwrap(), *c);
        }
        let e = "green".parse::<Colour>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown Colour \"green\" (expected one of: red, dark_blue, error)"
        );
        assert!(serde_json::from_str::<Colour>("\"green\"").is_err());
        let e = "sk_live 0123456789".parse::<Colour>().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unknown Colour (a value of 18 bytes)"),
            "{e}"
        );
    }

    #[test]
    fn corrupt_json_message_does_not_quote_the_content() {
        let e = decode_json::<serde_json::Value>("{\"secret\": sk_live_123").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("stored JSON is invalid (syntax error"),
            "{msg}"
        );
        assert!(!msg.contains("sk_live"), "{msg}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rows_decode_on_both_engines_and_corrupt_values_name_table_and_column() {
        for backend in testing::backends() {
            let (store, _db) = testing::fresh(backend).await;
            sqlx::query("CREATE TABLE vocab_t (id BIGINT PRIMARY KEY, colour TEXT NOT NULL, body TEXT NOT NULL, note TEXT)")
                .execute(store.writer())
                .await
                .unwrap();
            let insert = "INSERT INTO vocab_t (id, colour, body, note) VALUES ($1, $2, $3, $4)";
            sqlx::query(insert)
                .bind(1_i64)
                .bind(Colour::DarkBlue)
                .bind(Json(serde_json::json!({"a": [1, 2]})))
                .bind(None::<Json<Vec<i64>>>)
                .execute(store.writer())
                .await
                .unwrap();
            let select = "SELECT colour, body, note FROM vocab_t WHERE id = $1";
            let r: Row = sqlx::query_as(select)
                .bind(1_i64)
                .fetch_one(store.reader())
                .await
                .unwrap();
            assert_eq!(r.colour, Colour::DarkBlue);
            assert_eq!(r.body.0, serde_json::json!({"a": [1, 2]}));
            assert!(r.note.is_none());

            for (id, colour, body, note, column) in [
                (2_i64, "red", "{not json", None, "body"),
                (3, "purple", "{}", None, "colour"),
                (4, "red", "{}", Some("[1, \"x\"]"), "note"),
            ] {
                sqlx::query(insert)
                    .bind(id)
                    .bind(colour)
                    .bind(body)
                    .bind(note)
                    .execute(store.writer())
                    .await
                    .unwrap();
                let e = sqlx::query_as::<_, Row>(select)
                    .bind(id)
                    .fetch_one(store.reader())
                    .await
                    .map_err(in_table("vocab_t", Some(&format!("id {id}"))))
                    .unwrap_err();
                assert!(is_corrupt_row(&e), "{backend}: {e}");
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("vocab_t.{column} (id {id})")),
                    "{backend}: {msg}"
                );
            }
        }
    }
}

//! Timestamps as both backends store them: PostgreSQL `timestamptz`; SQLite `TEXT` in one
//! fixed-width UTC form (`2026-01-02T03:04:05.678901Z`), so that comparing and ordering
//! the text compares and orders the instants.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const SQLITE_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// An instant as stored (microsecond resolution, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DbTime(pub OffsetDateTime);

impl From<OffsetDateTime> for DbTime {
    fn from(t: OffsetDateTime) -> Self {
        Self(surety_core::clock::truncate_to_micros(
            t.to_offset(UtcOffset::UTC),
        ))
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> <Sqlite as sqlx::Database>::TypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &<Sqlite as sqlx::Database>::TypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        let utc = self.0.to_offset(UtcOffset::UTC);
        let text = PrimitiveDateTime::new(utc.date(), utc.time()).format(SQLITE_FORMAT)?;
        <String as Encode<'_, Sqlite>>::encode(text, buf)
    }
}

impl Decode<'_, Sqlite> for DbTime {
    fn decode(value: <Sqlite as sqlx::Database>::ValueRef<'_>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'_, Sqlite>>::decode(value)?;
        let t = PrimitiveDateTime::parse(text, SQLITE_FORMAT)?.assume_utc();
        Ok(Self(t))
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> <Postgres as sqlx::Database>::TypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &<Postgres as sqlx::Database>::TypeInfo) -> bool {
        <OffsetDateTime as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as sqlx::Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl Decode<'_, Postgres> for DbTime {
    fn decode(value: <Postgres as sqlx::Database>::ValueRef<'_>) -> Result<Self, BoxDynError> {
        let t = <OffsetDateTime as Decode<'_, Postgres>>::decode(value)?;
        Ok(Self(t.to_offset(UtcOffset::UTC)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn sqlite_text_is_fixed_width_so_text_order_is_time_order() {
        let a = datetime!(2026-01-02 03:04:05 UTC);
        let b = datetime!(2026-01-02 03:04:05.000001 UTC);
        let fa = PrimitiveDateTime::new(a.date(), a.time())
            .format(SQLITE_FORMAT)
            .unwrap();
        let fb = PrimitiveDateTime::new(b.date(), b.time())
            .format(SQLITE_FORMAT)
            .unwrap();
        assert_eq!(fa, "2026-01-02T03:04:05.000000Z");
        assert_eq!(fa.len(), fb.len());
        assert!(fa < fb);
    }
}

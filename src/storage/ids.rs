//! How the identifier types of [`crate::domain`] are stored: each as its plain column type
//! (text for job ids and patient keys, a 64-bit integer for serials), on either database engine.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;

use crate::domain::{JobId, ModelVersionId, PatientKey, RoundId};

/// `sqlx::Type`, `Encode` and `Decode` for an id stored as `$column` (its Rust type),
/// converting with `$to_column` and `From<$column>`.
macro_rules! stored_as {
    ($id:ty, $column:ty, $to_column:expr) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $id
        where
            $column: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <$column as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <$column as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $id
        where
            $column: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(&self, buffer: &mut DB::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
                let to_column: fn(&$id) -> $column = $to_column;
                <$column as sqlx::Encode<'q, DB>>::encode(to_column(self), buffer)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $id
        where
            $column: sqlx::Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<$id>::from(<$column as sqlx::Decode<'r, DB>>::decode(value)?))
            }
        }
    };
}

stored_as!(JobId, String, |id| id.as_str().to_owned());
stored_as!(PatientKey, String, |key| key.as_str().to_owned());
stored_as!(RoundId, i64, |id| id.get());
stored_as!(ModelVersionId, i64, |id| id.get());

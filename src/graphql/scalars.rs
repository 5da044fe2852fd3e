//! Houston's scalar names: `Uuid` (async-graphql's own is named `UUID`).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uuid(pub uuid::Uuid);

#[Scalar(name = "Uuid")]
impl ScalarType for Uuid {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => uuid::Uuid::parse_str(text.trim()).map(Uuid).map_err(|_| {
                InputValueError::custom(format!(
                    "\"{}\" is not a UUID",
                    crate::domain::text::excerpt(text)
                ))
            }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

impl From<uuid::Uuid> for Uuid {
    fn from(id: uuid::Uuid) -> Self {
        Uuid(id)
    }
}

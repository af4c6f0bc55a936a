//! Validation shared by every contract type: one error that names the offending field.

use serde::{Serialize, de::DeserializeOwned};

/// Why a contract value was rejected, naming the field (dotted path) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field `{field}`: {reason}")]
pub struct ValidationError {
    /// Dotted path of the offending field, e.g. `customer.id`.
    pub field: String,
    /// Human-readable reason, e.g. `must not be empty`.
    pub reason: String,
}

impl ValidationError {
    /// Builds an error for `field` with `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }

    /// Prefixes the field path, so nested validators can report `customer.id` rather than `id`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

/// A versioned type of the bus contract: its schema id (the `Sb-Schema` header) and its checks.
pub trait Contract: Serialize + DeserializeOwned {
    /// The schema id carried in the `Sb-Schema` header, e.g. `envelope/1`.
    const SCHEMA: &'static str;

    /// Checks the invariants serde cannot express; the error names the first bad field.
    fn validate(&self) -> Result<(), ValidationError>;

    /// Parses JSON and validates it; a serde error is reported with the field path serde gives.
    fn from_json(bytes: &[u8]) -> Result<Self, ValidationError> {
        let value: Self = serde_json::from_slice(bytes).map_err(json_error)?;
        value.validate()?;
        Ok(value)
    }
}

/// Turns a serde_json error into a [`ValidationError`], pulling the field name out of the
/// message when serde names one (`missing field `text``, `unknown field `foo``).
pub fn json_error(err: serde_json::Error) -> ValidationError {
    let msg = err.to_string();
    let field = msg.split('`').nth(1).filter(|_| msg.contains(" field `")).unwrap_or("$").to_string();
    ValidationError::new(field, msg)
}

pub(crate) fn non_empty(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    Ok(())
}

pub(crate) fn max_len(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.len() > max {
        return Err(ValidationError::new(field, format!("must be at most {max} bytes, got {}", value.len())));
    }
    Ok(())
}

/// Names used in subjects and ids: lowercase ASCII letters, digits, `-` and `_`.
pub(crate) fn token(field: &str, value: &str) -> Result<(), ValidationError> {
    non_empty(field, value)?;
    max_len(field, value, 64)?;
    if !value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_') {
        return Err(ValidationError::new(field, "must use only a-z, 0-9, '-' and '_'"));
    }
    Ok(())
}

/// Whole numbers as JSON Schema's `integer` takes them: `3` and `3.0` alike (some JSON writers
/// give every number a fraction), for `deserialize_with`.
pub mod whole {
    use std::collections::BTreeMap;

    use serde::de::{Deserialize, Deserializer, Error};

    fn to_u32<E: Error>(n: serde_json::Number) -> Result<u32, E> {
        let whole = n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64));
        whole
            .and_then(|w| u32::try_from(w).ok())
            .ok_or_else(|| E::custom(format!("invalid value: {n}, expected a whole number from 0 to {}", u32::MAX)))
    }

    /// A `u64`.
    pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        n.as_u64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64).map(|f| f as u64))
            .ok_or_else(|| D::Error::custom(format!("invalid value: {n}, expected a whole number from 0")))
    }

    /// A `u32`.
    pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        to_u32(serde_json::Number::deserialize(d)?)
    }

    /// An optional `u32` (`null` is none).
    pub fn option_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        Option::<serde_json::Number>::deserialize(d)?.map(to_u32).transpose()
    }

    /// A map of `u32`s.
    pub fn map_u32<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, u32>, D::Error> {
        BTreeMap::<String, serde_json::Number>::deserialize(d)?.into_iter().map(|(k, n)| Ok((k, to_u32(n)?))).collect()
    }
}
